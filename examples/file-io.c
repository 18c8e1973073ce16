/* SPDX-License-Identifier: MIT */
/*
 * file-io: read and write through the ring on a regular file and a pipe
 * (docs/io.md). No thread pool: each call is one io_uring op.
 *
 * A task creates a temporary file with an openat op, writes "weft" at
 * offset 4096, reads it back at that offset, closes the file through the
 * ring, then reads a line from a pipe that main writes to. Exits 0 when
 * everything read matches.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

struct file_io {
	char path[64];
	int file, pipe_rd, step;
	bool submitted; /* the op of this step is prepared and polled */
	weft_io io;
	char buf[16];
};

static weft_poll file_io_poll(void *self, weft_cx *cx, void *out)
{
	struct file_io *f = self;
	int64_t res;

	for (;;) {
		/* Prepare each step's op once: preparing a weft_io again while
		 * its op is in flight would cancel that op. */
		if (!f->submitted) {
			switch (f->step) {
			case 0:
				/* The path is copied by the first poll. */
				weft_io_prep_openat(&f->io, AT_FDCWD, f->path,
						    O_CREAT | O_EXCL | O_RDWR |
							    O_CLOEXEC,
						    0600);
				break;
			case 1:
				weft_io_prep_write(&f->io, f->file, "weft", 4,
						   4096);
				break;
			case 2:
				weft_io_prep_read(&f->io, f->file, f->buf, 4,
						  4096);
				break;
			case 3:
				weft_io_prep_close(&f->io, f->file);
				break;
			case 4:
				/* -1: the stream's own position (pipes). */
				weft_io_prep_read(&f->io, f->pipe_rd, f->buf + 4,
						  sizeof(f->buf) - 5, -1);
				break;
			default:
				*(int *)out = !memcmp(f->buf, "weftpiped", 9);
				return WEFT_READY;
			}
			f->submitted = true;
		}
		if (weft_io_poll(&f->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		if (res < 0) {
			fprintf(stderr, "file-io: %s\n", weft_strerror((int)res));
			*(int *)out = 0;
			return WEFT_READY;
		}
		if (f->step == 0)
			f->file = (int)res; /* the new fd is ours */
		f->step++;
		f->submitted = false;
	}
}

static const weft_future_desc file_io_desc = {
	.poll = file_io_poll,
	.drop = NULL,
	.size = sizeof(struct file_io),
	.output_size = sizeof(int),
};

int main(void)
{
	struct file_io f = { .file = -1 };
	int p[2], ok = 0;
	weft_runtime *rt;

	snprintf(f.path, sizeof(f.path), "/tmp/weft-file-io.%ld",
		 (long)getpid());
	if (pipe(p) < 0)
		return 1;
	f.pipe_rd = p[0];
	/* Ready before the task reads: a blocking pipe would also work
	 * (the kernel waits for data), this just keeps main simple. */
	if (write(p[1], "piped", 5) != 5 || weft_runtime_new(NULL, &rt) < 0)
		return 1;
	if (weft_block_on(rt, &file_io_desc, &f, &ok) < 0)
		ok = 0;
	weft_runtime_free(rt);
	unlink(f.path);
	printf("file-io: %s\n", ok ? "ok" : "MISMATCH");
	return ok ? 0 : 1;
}
