/* SPDX-License-Identifier: MIT */
/*
 * The fiber context switch for AArch64 (AAPCS64), after Boost.Context's
 * jump_fcontext: save x19-x30, d8-d15 and FPCR on the current stack, swap
 * stack pointers, restore from the other stack.
 *
 * void *weft__fiber_jump(void **save_sp, void *load_sp, void *arg)
 *
 * Returns @arg (x0) on the other side. A new stack is laid out by
 * weft__fiber_prepare (fiber.c): x30 = weft__fiber_trampoline, x29 = 0.
 */
#if defined(__aarch64__)
	.text
	.globl	weft__fiber_jump
	.hidden	weft__fiber_jump
	.type	weft__fiber_jump, %function
	.p2align 4
weft__fiber_jump:
	.cfi_startproc
	sub	sp, sp, #176
	.cfi_adjust_cfa_offset 176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]

	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1

	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	mov	x0, x2
	ret
	.cfi_endproc
	.size	weft__fiber_jump, .-weft__fiber_jump

	.globl	weft__fiber_trampoline
	.hidden	weft__fiber_trampoline
	.type	weft__fiber_trampoline, %function
	.p2align 4
weft__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x29, #0
	bl	weft__fiber_main
	brk	#0
	.cfi_endproc
	.size	weft__fiber_trampoline, .-weft__fiber_trampoline
#endif
	.section .note.GNU-stack,"",%progbits
