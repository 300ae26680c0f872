/* hello.c — a plain WASI command: prints a greeting and its arguments.
 * `hello exit N` exits with code N; `hello env` prints the environment;
 * `hello cat PATH` prints a file; `hello write PATH TEXT` writes one (both
 * work only inside a directory the host granted with --dir).
 * Build: make guest.  Run: target/release/subinterp run target/guest/hello.wasm a b */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("hello from wasm, argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
    if (argc >= 3 && strcmp(argv[1], "exit") == 0) {
        fprintf(stderr, "exiting with %s\n", argv[2]);
        return atoi(argv[2]);
    }
    if (argc >= 2 && strcmp(argv[1], "env") == 0) {
        int n = 0;
        for (char **e = environ; *e; e++, n++) printf("env: %s\n", *e);
        printf("env count: %d\n", n);
    }
    if (argc >= 2 && strcmp(argv[1], "ls") == 0) {
        FILE *f = fopen("/etc/passwd", "r");
        printf("open /etc/passwd: %s\n", f ? "allowed" : "denied");
    }
    if (argc >= 3 && strcmp(argv[1], "cat") == 0) {
        FILE *f = fopen(argv[2], "r");
        if (!f) {
            printf("cannot open %s\n", argv[2]);
            return 2;
        }
        char buf[256];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
        fclose(f);
    }
    if (argc >= 4 && strcmp(argv[1], "write") == 0) {
        FILE *f = fopen(argv[2], "w");
        if (!f || fputs(argv[3], f) < 0) {
            printf("cannot write %s\n", argv[2]);
            return 2;
        }
        fclose(f);
    }
    return 0;
}
