/* Copies a binary into a memfd and executes it from there: an exec of a file
 * that has no name on any file system. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;
	int src, mfd;

	if (argc < 2)
		return 2;
	src = open(argv[1], O_RDONLY);
	if (src < 0 || fstat(src, &st) < 0)
		return 3;
	mfd = memfd_create("osprey-test", MFD_CLOEXEC);
	if (mfd < 0 || sendfile(mfd, src, NULL, st.st_size) != st.st_size)
		return 4;
	fexecve(mfd, argv + 1, (char *[]){ NULL });
	perror("fexecve");
	return 5;
}
