/*
 * fs.c — files and ES module files for the JavaScript guest.
 *
 * Two things, both through the directories the host granted as WASI
 * preopens (wasi-libc's table of them), so a script reaches exactly what a
 * WASI module with the same grants would, checked by the same host code:
 *
 *   - the natives behind node:fs (guest/js/node/fs.js): read, write, list,
 *     stat, make and remove files in the `--dir` grants;
 *   - the module loader: `import` of a path resolves from the importing
 *     module's name and loads the file through the module folder, a
 *     read-only grant the host adds when it runs a module file (told to
 *     this layer by si_js_module_root). Scripts' fs calls cannot read that
 *     folder unless it was also granted to them.
 *
 * Paths are made absolute (the working directory is "/") and "." segments
 * and repeated slashes removed; ".." is left for the host, which refuses a
 * path that climbs out of its grant (as it does for any WASI module), and
 * so are symlinks that lead out of one.
 *
 * The node:* built-in modules (guest/js/node/, one file each) are compiled and
 * evaluated by si_node_setup while the snapshot is taken, so an
 * interpreter pays nothing for them until it imports one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wasi/api.h>
#include <wasi/libc.h>
#include <wasi/libc-find-relpath.h>

#include "quickjs.h"
#include "fs.h"
#include "node_modules.h" /* generated from the files in guest/js/node/ */

/* Failures of our own, beside libc's errno values (all positive). */
#define FS_NOT_GRANTED 1000 /* no grant holds the path */
#define FS_MODULES_ONLY 1001 /* the module folder, which is for imports */
#define FS_TOO_LARGE 1002    /* a file past MAX_FILE bytes */

/* The largest file read whole (Node's limit for readFile is 2 GiB). */
#define MAX_FILE ((size_t)0x7fffffff)

/* The module folder's guest path as wasi-libc keeps preopen names (no
 * leading slash), or NULL; and whether fs may use it too (it is also one of
 * the script's own grants). */
static char *module_root;
static bool module_root_shared;

/* An interpreter started from the snapshot inherits the snapshot's table of
 * preopens (none): it reads its own the first time a path is used. */
static bool preopens_fresh;

/* wasi-libc's (preopens.c), for pre-initialised programs; not in its
 * headers. */
void __wasilibc_reset_preopens(void);

static void fresh_preopens(void) {
    if (preopens_fresh) return;
    __wasilibc_reset_preopens();
    __wasilibc_populate_preopens();
    preopens_fresh = true;
}

/* ---- paths -------------------------------------------------------------- */

/* `path` (len bytes) as an absolute path without "." segments or repeated
 * slashes, in a new buffer; NULL when it holds a NUL byte (errno EINVAL) or
 * memory ran out. */
static char *clean_path(const char *path, size_t len) {
    if (strlen(path) != len) {
        errno = EINVAL;
        return NULL;
    }
    char *out = malloc(len + 2);
    if (!out) {
        errno = ENOMEM;
        return NULL;
    }
    size_t o = 0;
    out[o++] = '/';
    const char *p = path;
    while (*p) {
        while (*p == '/') p++;
        const char *seg = p;
        while (*p && *p != '/') p++;
        size_t n = (size_t)(p - seg);
        if (n == 0 || (n == 1 && seg[0] == '.')) continue;
        if (o > 1) out[o++] = '/';
        memcpy(out + o, seg, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

/* A granted path: the preopen's descriptor, and the path below it. */
typedef struct {
    char *abs; /* owned; `rel` points into it */
    const char *rel;
    const char *prefix;
    int dirfd;
} Place;

static void place_free(Place *pl) {
    free(pl->abs);
    pl->abs = NULL;
}

/* Finds the grant that holds `path`: 0, or an error code (errno value or
 * FS_*). `modules`: looking for a module file, in the module folder only. */
static int place_of(const char *path, size_t len, bool modules, Place *pl) {
    fresh_preopens();
    pl->abs = clean_path(path, len);
    if (!pl->abs) return errno;
    pl->dirfd = __wasilibc_find_abspath(pl->abs, &pl->prefix, &pl->rel);
    if (pl->dirfd < 0) {
        place_free(pl);
        return FS_NOT_GRANTED;
    }
    bool in_modules = module_root && strcmp(pl->prefix, module_root) == 0;
    if (modules ? !in_modules : (in_modules && !module_root_shared)) {
        place_free(pl);
        return modules ? FS_NOT_GRANTED : FS_MODULES_ONLY;
    }
    return 0;
}

/* ---- reading a whole file ----------------------------------------------- */

static void *fs_realloc(JSRuntime *rt, void *opaque, void *ptr, size_t size) {
    (void)opaque;
    return js_realloc_rt(rt, ptr, size);
}

/* Reads the open file `fd` whole into a js_malloc'd buffer (NUL-terminated,
 * for a module's source). 0, or an error code; -1 with a JS exception
 * pending (out of memory: the interpreter's memory limit). */
static int read_all(JSContext *c, int fd, uint8_t **out, size_t *out_len) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    if (S_ISDIR(st.st_mode)) return EISDIR;
    if (st.st_size < 0 || (uint64_t)st.st_size > MAX_FILE) return FS_TOO_LARGE;
    size_t cap = (size_t)st.st_size + 1, n = 0;
    uint8_t *buf = js_malloc(c, cap);
    if (!buf) return -1;
    for (;;) {
        if (n + 1 == cap) { /* the file grew while being read */
            if (cap > MAX_FILE) {
                js_free(c, buf);
                return FS_TOO_LARGE;
            }
            uint8_t *more = js_realloc(c, buf, cap * 2);
            if (!more) {
                js_free(c, buf);
                return -1;
            }
            buf = more;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0) {
            int e = errno;
            js_free(c, buf);
            return e;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* A JS string argument as a Place; `return` the error code on failure. */
#define PLACE(pl, arg, modules)                                        \
    Place pl;                                                          \
    {                                                                  \
        size_t len_;                                                   \
        const char *s_ = JS_ToCStringLen(c, &len_, arg);               \
        if (!s_) return JS_EXCEPTION;                                  \
        int e_ = place_of(s_, len_, modules, &pl);                     \
        JS_FreeCString(c, s_);                                         \
        if (e_) return JS_NewInt32(c, e_);                             \
    }

/* readFile(path, text): the file's bytes (a Uint8Array), or its text as
 * UTF-8 with `text`; or an error code. */
static JSValue fs_read_file(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    bool text = JS_ToBool(c, argv[1]);
    PLACE(pl, argv[0], false);
    int fd = openat(pl.dirfd, pl.rel, O_RDONLY);
    int e = fd < 0 ? errno : 0;
    place_free(&pl);
    if (e) return JS_NewInt32(c, e);
    uint8_t *buf;
    size_t n;
    e = read_all(c, fd, &buf, &n);
    close(fd);
    if (e < 0) return JS_EXCEPTION;
    if (e) return JS_NewInt32(c, e);
    if (text) {
        JSValue s = JS_NewStringLen(c, (const char *)buf, n);
        js_free(c, buf);
        return s;
    }
    return JS_NewUint8Array(c, buf, n, fs_realloc, NULL, false);
}

/* writeFile(path, data, flag): data a string (written as UTF-8) or a
 * Uint8Array; flag 0 "w", 1 "a", 2 "wx", 3 "ax". 0 or an error code. */
static JSValue fs_write_file(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t flag;
    if (JS_ToInt32(c, &flag, argv[2])) return JS_EXCEPTION;
    size_t len;
    const char *str = NULL;
    const uint8_t *data;
    if (JS_IsString(argv[1])) {
        str = JS_ToCStringLen(c, &len, argv[1]);
        if (!str) return JS_EXCEPTION;
        data = (const uint8_t *)str;
    } else {
        data = JS_GetUint8Array(c, &len, argv[1]);
        if (!data && len) return JS_EXCEPTION;
        if (!data) data = (const uint8_t *)"";
    }
    int oflags = O_WRONLY | O_CREAT | ((flag & 1) ? O_APPEND : O_TRUNC) | ((flag & 2) ? O_EXCL : 0);
    Place pl;
    size_t plen;
    const char *path = JS_ToCStringLen(c, &plen, argv[0]);
    int e = path ? place_of(path, plen, false, &pl) : -1;
    if (path) JS_FreeCString(c, path);
    int fd = -1;
    if (!e) {
        fd = openat(pl.dirfd, pl.rel, oflags, 0666);
        if (fd < 0) e = errno;
        place_free(&pl);
    }
    for (size_t done = 0; !e && done < len;) {
        ssize_t w = write(fd, data + done, len - done);
        if (w <= 0) e = w < 0 ? errno : EIO;
        else done += (size_t)w;
    }
    if (fd >= 0) close(fd);
    if (str) JS_FreeCString(c, str);
    return e < 0 ? JS_EXCEPTION : JS_NewInt32(c, e);
}

static int file_type(mode_t m) {
    if (S_ISREG(m)) return 1;
    if (S_ISDIR(m)) return 2;
    if (S_ISLNK(m)) return 3;
    return 4;
}

/* readdir(path): [name, type, name, type, ...] (type: 1 file, 2 directory,
 * 3 symlink, 4 other, 0 unknown), "." and ".." left out; or an error code. */
static JSValue fs_readdir(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    PLACE(pl, argv[0], false);
    int fd = openat(pl.dirfd, pl.rel, O_RDONLY | O_DIRECTORY);
    int e = fd < 0 ? errno : 0;
    place_free(&pl);
    if (e) return JS_NewInt32(c, e);
    DIR *d = fdopendir(fd);
    if (!d) {
        e = errno;
        close(fd);
        return JS_NewInt32(c, e);
    }
    JSValue arr = JS_NewArray(c);
    uint32_t i = 0;
    struct dirent *ent;
    errno = 0;
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        int t = ent->d_type == DT_REG ? 1 : ent->d_type == DT_DIR ? 2 : ent->d_type == DT_LNK ? 3
                : ent->d_type == DT_UNKNOWN ? 0 : 4;
        JS_SetPropertyUint32(c, arr, i++, JS_NewString(c, ent->d_name));
        JS_SetPropertyUint32(c, arr, i++, JS_NewInt32(c, t));
    }
    e = errno;
    closedir(d);
    if (e) {
        JS_FreeValue(c, arr);
        return JS_NewInt32(c, e);
    }
    return arr;
}

/* stat(path, follow): [type, size, atimeMs, mtimeMs, ctimeMs, ino, nlink,
 * dev]; or an error code. */
static JSValue fs_stat(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    bool follow = JS_ToBool(c, argv[1]);
    PLACE(pl, argv[0], false);
    struct stat st;
    int r = fstatat(pl.dirfd, pl.rel, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW);
    int e = r ? errno : 0;
    place_free(&pl);
    if (e) return JS_NewInt32(c, e);
    double ms[3] = {
        (double)st.st_atim.tv_sec * 1e3 + (double)st.st_atim.tv_nsec / 1e6,
        (double)st.st_mtim.tv_sec * 1e3 + (double)st.st_mtim.tv_nsec / 1e6,
        (double)st.st_ctim.tv_sec * 1e3 + (double)st.st_ctim.tv_nsec / 1e6,
    };
    JSValue arr = JS_NewArray(c);
    JS_SetPropertyUint32(c, arr, 0, JS_NewInt32(c, file_type(st.st_mode)));
    JS_SetPropertyUint32(c, arr, 1, JS_NewFloat64(c, (double)st.st_size));
    for (int i = 0; i < 3; i++) JS_SetPropertyUint32(c, arr, 2 + i, JS_NewFloat64(c, ms[i]));
    JS_SetPropertyUint32(c, arr, 5, JS_NewFloat64(c, (double)st.st_ino));
    JS_SetPropertyUint32(c, arr, 6, JS_NewFloat64(c, (double)st.st_nlink));
    JS_SetPropertyUint32(c, arr, 7, JS_NewFloat64(c, (double)st.st_dev));
    return arr;
}

/* mkdir(path): 0 or an error code. */
static JSValue fs_mkdir(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    PLACE(pl, argv[0], false);
    int e = mkdirat(pl.dirfd, pl.rel, 0777) ? errno : 0;
    place_free(&pl);
    return JS_NewInt32(c, e);
}

/* remove(path, dir): removes a file (or an empty directory with `dir`): 0
 * or an error code. */
static JSValue fs_remove(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    bool dir = JS_ToBool(c, argv[1]);
    PLACE(pl, argv[0], false);
    int e = unlinkat(pl.dirfd, pl.rel, dir ? AT_REMOVEDIR : 0) ? errno : 0;
    place_free(&pl);
    return JS_NewInt32(c, e);
}

/* rename(from, to): 0 or an error code. */
static JSValue fs_rename(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    PLACE(from, argv[0], false);
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[1]);
    if (!s) {
        place_free(&from);
        return JS_EXCEPTION;
    }
    Place to;
    int e = place_of(s, len, false, &to);
    JS_FreeCString(c, s);
    if (!e) {
        e = renameat(from.dirfd, from.rel, to.dirfd, to.rel) ? errno : 0;
        place_free(&to);
    }
    place_free(&from);
    return JS_NewInt32(c, e);
}

/* errorName(code): [Node's code, its description] for an error code. */
static JSValue fs_error_name(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t e;
    if (JS_ToInt32(c, &e, argv[0])) return JS_EXCEPTION;
    const char *code = "EIO", *desc = strerror(e);
    switch (e) {
    case FS_NOT_GRANTED: code = "EACCES"; desc = "permission denied (not in a granted directory)"; break;
    case FS_MODULES_ONLY:
        code = "EACCES";
        desc = "permission denied (the module folder is granted to imports only)";
        break;
    case FS_TOO_LARGE: code = "ERR_FS_FILE_TOO_LARGE"; desc = "file is larger than 2 GiB"; break;
    case ENOTCAPABLE: code = "EACCES"; desc = "permission denied (outside the granted directories)"; break;
    case ENOENT: code = "ENOENT"; desc = "no such file or directory"; break;
    case EACCES: code = "EACCES"; desc = "permission denied"; break;
    case EPERM: code = "EPERM"; desc = "operation not permitted"; break;
    case EEXIST: code = "EEXIST"; desc = "file already exists"; break;
    case ENOTDIR: code = "ENOTDIR"; desc = "not a directory"; break;
    case EISDIR: code = "EISDIR"; desc = "illegal operation on a directory"; break;
    case ENOTEMPTY: code = "ENOTEMPTY"; desc = "directory not empty"; break;
    case EINVAL: code = "EINVAL"; desc = "invalid argument"; break;
    case EMFILE: code = "EMFILE"; desc = "too many open files"; break;
    case ENAMETOOLONG: code = "ENAMETOOLONG"; desc = "name too long"; break;
    case ELOOP: code = "ELOOP"; desc = "too many symbolic links encountered"; break;
    case EROFS: code = "EROFS"; desc = "read-only file system"; break;
    case ENOSPC: code = "ENOSPC"; desc = "no space left on device"; break;
    case EBUSY: code = "EBUSY"; desc = "resource busy or locked"; break;
    case EXDEV: code = "EXDEV"; desc = "cross-device link not permitted"; break;
    case EBADF: code = "EBADF"; desc = "bad file descriptor"; break;
    case ENOMEM: code = "ENOMEM"; desc = "not enough memory"; break;
    case EFBIG: code = "EFBIG"; desc = "file too large"; break;
    default: break;
    }
    JSValue pair = JS_NewArray(c);
    JS_SetPropertyUint32(c, pair, 0, JS_NewString(c, code));
    JS_SetPropertyUint32(c, pair, 1, JS_NewString(c, desc));
    return pair;
}

static const JSCFunctionListEntry fs_funcs[] = {
    JS_CFUNC_DEF("readFile", 2, fs_read_file),
    JS_CFUNC_DEF("writeFile", 3, fs_write_file),
    JS_CFUNC_DEF("readdir", 1, fs_readdir),
    JS_CFUNC_DEF("stat", 2, fs_stat),
    JS_CFUNC_DEF("mkdir", 1, fs_mkdir),
    JS_CFUNC_DEF("remove", 2, fs_remove),
    JS_CFUNC_DEF("rename", 2, fs_rename),
    JS_CFUNC_DEF("errorName", 1, fs_error_name),
};

/* ---- module files --------------------------------------------------------- */

/* The importing module's name, kept from normalising to the loading that
 * follows it, for the loader's errors. */
static char last_base[256];

static bool is_builtin(const char *name, size_t len) {
    for (size_t i = 0; i < NODE_MODULES_COUNT; i++) {
        const char *bare = node_modules[i].name + 5; /* after "node:" */
        if (strlen(bare) == len && !memcmp(bare, name, len)) return true;
    }
    return false;
}

/* Joins `name` (relative: "./", "../") to the folder of `base`, resolving
 * "." and ".." textually (as URLs are); an absolute `name` is normalised
 * alone. Above the root, ".." stays at the root. */
static char *join_path(JSContext *c, const char *base, const char *name) {
    size_t blen = name[0] == '/' ? 0 : strlen(base), nlen = strlen(name);
    char *out = js_malloc(c, blen + nlen + 3);
    if (!out) return NULL;
    const char *slash = name[0] == '/' ? NULL : strrchr(base, '/');
    size_t o = 0;
    bool absolute = name[0] == '/' || base[0] == '/';
    if (slash) {
        memcpy(out, base, (size_t)(slash - base));
        o = (size_t)(slash - base);
    }
    out[o] = '\0';
    const char *p = name;
    while (*p) {
        while (*p == '/') p++;
        const char *seg = p;
        while (*p && *p != '/') p++;
        size_t n = (size_t)(p - seg);
        if (n == 0 || (n == 1 && seg[0] == '.')) continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            char *up = strrchr(out, '/');
            o = up ? (size_t)(up - out) : 0;
            out[o] = '\0';
            continue;
        }
        if (o > 0 || absolute) out[o++] = '/';
        memcpy(out + o, seg, n);
        o += n;
        out[o] = '\0';
    }
    if (o == 0 && absolute) out[o++] = '/';
    out[o] = '\0';
    return out;
}

/* The module name `name` stands for when imported from `base`: a node:
 * built-in (also without its prefix), a path resolved from `base`'s folder,
 * or any other name as it is (the loader then refuses it). */
static char *module_normalize(JSContext *c, const char *base, const char *name, void *opaque) {
    (void)opaque;
    size_t blen = strlen(base);
    if (blen >= sizeof last_base) blen = sizeof last_base - 1;
    memcpy(last_base, base, blen);
    last_base[blen] = '\0';
    size_t len = strlen(name);
    if (!strncmp(name, "node:", 5)) return js_strdup(c, name);
    if (is_builtin(name, len)) {
        char *out = js_malloc(c, len + 6);
        if (out) {
            memcpy(out, "node:", 5);
            memcpy(out + 5, name, len + 1);
        }
        return out;
    }
    bool relative = name[0] == '.' && (name[1] == '/' || (name[1] == '.' && name[2] == '/'));
    if (relative && base[0] != '/' && module_root) {
        /* From a script (not a module file): the module folder. */
        size_t rlen = strlen(module_root);
        char *root = js_malloc(c, rlen + 4);
        if (!root) return NULL;
        root[0] = '/';
        memcpy(root + 1, module_root, rlen);
        memcpy(root + 1 + rlen, "/.", 3);
        char *out = join_path(c, root, name);
        js_free(c, root);
        return out;
    }
    if (relative || name[0] == '/') return join_path(c, base, name);
    return js_strdup(c, name);
}

static bool has_module_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && !strchr(dot, '/') && (!strcmp(dot, ".js") || !strcmp(dot, ".mjs") || !strcmp(dot, ".cjs"));
}

/* Throws the error of a failed import; NULL. */
static void *module_error(JSContext *c, const char *name, const char *why) {
    if (last_base[0])
        JS_ThrowReferenceError(c, "cannot import '%s' (from '%s'): %s", name, last_base, why);
    else
        JS_ThrowReferenceError(c, "cannot import '%s': %s", name, why);
    return NULL;
}

/* Reads the module file `name` (normalised) from the module folder into a
 * js_malloc'd, NUL-terminated buffer; NULL with an exception pending. */
static uint8_t *module_source(JSContext *c, const char *name, size_t *len) {
    if (!strncmp(name, "node:", 5)) return module_error(c, name, "no such built-in module");
    if (name[0] != '/') {
        return module_error(
            c, name,
            module_root ? "only relative or absolute paths and node: built-ins can be imported"
                        : "only modules evaluated earlier in this interpreter can be imported "
                          "(no module folder: run a module file)");
    }
    if (!module_root)
        return module_error(c, name, "no module folder (run a module file to import files)");
    if (!has_module_ext(name))
        return module_error(c, name, "only .js, .mjs and .cjs files can be imported");
    Place pl;
    int e = place_of(name, strlen(name), true, &pl);
    if (e == FS_NOT_GRANTED) return module_error(c, name, "outside the module folder");
    if (e) return module_error(c, name, strerror(e));
    int fd = openat(pl.dirfd, pl.rel, O_RDONLY);
    e = fd < 0 ? errno : 0;
    place_free(&pl);
    /* The host refuses a path that leaves the folder by ".." or a symlink. */
    if (e == ENOTCAPABLE || e == EPERM) return module_error(c, name, "outside the module folder");
    if (e == ENOENT) return module_error(c, name, "no such file");
    if (e) return module_error(c, name, strerror(e));
    uint8_t *src;
    e = read_all(c, fd, &src, len);
    close(fd);
    if (e < 0) return NULL;
    if (e == EISDIR) return module_error(c, name, "is a directory");
    if (e) return module_error(c, name, e == FS_TOO_LARGE ? "file too large" : strerror(e));
    return src;
}

/* Loads the module file `name` (normalised) through the module folder. */
static JSModuleDef *module_loader(JSContext *c, const char *name, void *opaque) {
    (void)opaque;
    size_t n;
    uint8_t *src = module_source(c, name, &n);
    if (!src) return NULL;
    JSValue f = JS_Eval(c, (const char *)src, n, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
    js_free(c, src);
    if (JS_IsException(f)) return NULL;
    JSModuleDef *m = JS_VALUE_GET_PTR(f);
    JS_FreeValue(c, f);
    return si_set_import_meta(c, m, name) < 0 ? NULL : m;
}

/* readModule(path): [name, source] of the module file `path` (relative to
 * the module folder, or absolute), for a child interpreter to run as that
 * module. */
static JSValue js_read_module(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    if (!module_root) return JS_ThrowTypeError(c, "runModule: no module folder (run a module file)");
    const char *spec = JS_ToCString(c, argv[0]);
    if (!spec) return JS_EXCEPTION;
    size_t rlen = strlen(module_root);
    char *base = js_malloc(c, rlen + 4);
    char *name = NULL;
    if (base) {
        base[0] = '/';
        memcpy(base + 1, module_root, rlen);
        memcpy(base + 1 + rlen, "/.", 3);
        name = join_path(c, base, spec);
        js_free(c, base);
    }
    JS_FreeCString(c, spec);
    if (!name) return JS_EXCEPTION;
    last_base[0] = '\0';
    size_t n;
    uint8_t *src = module_source(c, name, &n);
    JSValue out = JS_EXCEPTION;
    if (src) {
        out = JS_NewArray(c);
        JS_SetPropertyUint32(c, out, 0, JS_NewString(c, name));
        JS_SetPropertyUint32(c, out, 1, JS_NewStringLen(c, (const char *)src, n));
        js_free(c, src);
    }
    js_free(c, name);
    return out;
}

static const JSCFunctionListEntry module_funcs[] = {
    JS_CFUNC_DEF("readModule", 1, js_read_module),
};

void si_fs_add_natives(JSContext *c, JSValueConst si) {
    JS_SetPropertyFunctionList(c, si, module_funcs, sizeof module_funcs / sizeof module_funcs[0]);
}

/* ---- set-up --------------------------------------------------------------- */

int si_node_setup(JSContext *c) {
    JS_SetModuleLoaderFunc(JS_GetRuntime(c), module_normalize, module_loader, NULL);
    JSValue global = JS_GetGlobalObject(c);
    JSValue natives = JS_NewObject(c);
    JS_SetPropertyFunctionList(c, natives, fs_funcs, sizeof fs_funcs / sizeof fs_funcs[0]);
    JS_SetPropertyStr(c, global, "__si_fs", natives);
    int status = 0;
    for (size_t i = 0; i < NODE_MODULES_COUNT && !status; i++) {
        JSValue r = JS_Eval(c, (const char *)node_modules[i].src, node_modules[i].len, node_modules[i].name,
                            JS_EVAL_TYPE_MODULE);
        if (JS_IsException(r)) status = -1;
        JSContext *jc;
        while (!status && JS_ExecutePendingJob(JS_GetRuntime(c), &jc) > 0) {
        }
        if (!status && JS_PromiseState(c, r) != JS_PROMISE_FULFILLED) status = -1;
        JS_FreeValue(c, r);
    }
    JSAtom atom = JS_NewAtom(c, "__si_fs");
    JS_DeleteProperty(c, global, atom, 0);
    JS_FreeAtom(c, atom);
    JS_FreeValue(c, global);
    return status;
}

__attribute__((export_name("si_js_module_root"))) int32_t si_js_module_root(char *path, int32_t len,
                                                                             int32_t shared) {
    if (!path || len < 0) return 2;
    path[len] = '\0';
    const char *p = path;
    while (*p == '/') p++;
    free(module_root);
    module_root = strdup(p);
    module_root_shared = shared != 0;
    free(path);
    return module_root ? 0 : 2;
}
