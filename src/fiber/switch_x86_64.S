/* SPDX-License-Identifier: MIT */
/*
 * The fiber context switch for x86-64 (System V), after Boost.Context's
 * jump_fcontext and Go's gogo/gosave (runtime/asm_amd64.s): save what the
 * ABI says a callee must preserve on the current stack, swap stack
 * pointers, restore from the other stack.
 *
 * void *weft__fiber_jump(void **save_sp, void *load_sp, void *arg)
 *
 * Pushes rbp rbx r12-r15 and the MXCSR and x87 control words (8 bytes),
 * stores rsp in *save_sp, loads load_sp, pops the same from there and
 * returns @arg (rax) on the other side. The red zone is not in use at a
 * call. A new stack is laid out by weft__fiber_prepare (fiber.c) to pop
 * into weft__fiber_trampoline with the first @arg.
 */
#if defined(__x86_64__)
	.text
	.globl	weft__fiber_jump
	.hidden	weft__fiber_jump
	.type	weft__fiber_jump, @function
	.p2align 4
weft__fiber_jump:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)

	movq	%rsp, (%rdi)
	movq	%rsi, %rsp

	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	movq	%rdx, %rax
	ret
	.cfi_endproc
	.size	weft__fiber_jump, .-weft__fiber_jump

/*
 * First code on a new fiber stack: the first jump's @arg arrives in rax.
 * Calls weft__fiber_main(arg), which never returns (it jumps away for
 * good). rip is undefined here, so unwinders and gdb stop at this frame
 * instead of walking into the stack's unused top.
 */
	.globl	weft__fiber_trampoline
	.hidden	weft__fiber_trampoline
	.type	weft__fiber_trampoline, @function
	.p2align 4
weft__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	movq	%rax, %rdi
	call	weft__fiber_main
	ud2
	.cfi_endproc
	.size	weft__fiber_trampoline, .-weft__fiber_trampoline
#endif
	.section .note.GNU-stack,"",@progbits
