//! The compiled-code cache: its folder (`HostBuilder::cache_dir`, the
//! user's cache folder by default, none with `no_cache`), the language
//! guests and user modules in it, and the command line's use of it. Every
//! test has a cache folder of its own; none touches the user's.
//!
//! A cache hit is observed without timing: a cache file that a later host
//! or process loads keeps its inode, while a miss would write a new file
//! and rename it over the name.

use std::path::{Path, PathBuf};
use std::process::Command;

use subinterp::{Error, Host, LimitError, Limits, Run};

fn subinterp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_subinterp"))
}

/// A command line that caches in `cache` (`$XDG_CACHE_HOME`).
fn subinterp_caching_in(cache: &Path) -> Command {
    let mut c = subinterp();
    c.env("XDG_CACHE_HOME", cache);
    c
}

fn host_caching_in(dir: &Path) -> Host {
    Host::builder()
        .pool_size(4)
        .cache_dir(dir)
        .build()
        .expect("host")
}

/// A file's inode: the same while it is not written again (a miss writes a
/// new file and renames it over the name; a hit only marks it used, in its
/// modification time).
fn identity(file: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(file).unwrap().ino()
}

fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    v.sort();
    v
}

const SEVEN: &[u8] = br#"(module (func (export "f") (result i32) (i32.const 7)))"#;

#[test]
fn the_js_guest_is_compiled_into_the_cache_dir_once_and_loaded_by_the_next_host() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host_caching_in(tmp.path());
    assert_eq!(host.cache_dir(), Some(tmp.path()));
    let js = host.js().unwrap();
    let file = js.cache_file().expect("written to the cache").to_path_buf();
    assert!(file.starts_with(tmp.path()) && file.is_file(), "{file:?}");
    let before = identity(&file);
    // A second host (as a second process would) loads it.
    let again = host_caching_in(tmp.path());
    let js = again.js().unwrap();
    assert!(js.is_preinitialized());
    assert_eq!(js.cache_file(), Some(file.as_path()));
    assert_eq!(identity(&file), before, "the cache was written again");
    let r = again.create_js(Limits::new()).unwrap();
    assert_eq!(
        r.run(Run::js("console.log(6 * 7)")).unwrap().stdout_text(),
        "42\n"
    );
}

#[test]
fn a_fuel_host_snapshots_and_caches_the_js_guest_too() {
    let tmp = tempfile::tempdir().unwrap();
    let fuel_host = || {
        Host::builder()
            .pool_size(4)
            .fuel(true)
            .cache_dir(tmp.path())
            .build()
            .unwrap()
    };
    let host = fuel_host();
    let js = host.js().unwrap();
    // The set-up ran once, when the snapshot was taken, not in each
    // interpreter on its own fuel.
    assert!(js.is_preinitialized());
    let file = js.cache_file().unwrap().to_path_buf();
    let before = identity(&file);
    let again = fuel_host();
    assert_eq!(again.js().unwrap().cache_file(), Some(file.as_path()));
    assert_eq!(identity(&file), before, "the snapshot was made again");
    let w = again.create_js(Limits::new().with_fuel(1_000_000)).unwrap();
    let r = w.run(Run::js("console.log(1 + 1)")).unwrap();
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text(), "2\n");
}

#[test]
fn compile_cached_writes_a_module_once_and_another_host_loads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let first = host_caching_in(tmp.path());
    let guest = first.compile_cached("seven.wat", SEVEN).unwrap();
    let file = guest.cache_file().unwrap().to_path_buf();
    assert_eq!(cwasm_files(tmp.path()), vec![file.clone()]);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("seven.module."), "{name}");
    let before = identity(&file);
    let second = host_caching_in(tmp.path());
    let guest = second.compile_cached("seven.wat", SEVEN).unwrap();
    assert_eq!(guest.cache_file(), Some(file.as_path()));
    assert_eq!(identity(&file), before);
    let interp = second.create(&guest).unwrap();
    assert_eq!(interp.run(Run::export("f")).unwrap().value, Some(7));
    // Other bytes, another file.
    let eight = br#"(module (func (export "f") (result i32) (i32.const 8)))"#;
    second.compile_cached("seven.wat", eight).unwrap();
    assert_eq!(cwasm_files(tmp.path()).len(), 2);
    // `compile` never touches the cache.
    let plain = second
        .compile("nine", b"(module (func (export \"g\")))")
        .unwrap();
    assert_eq!(plain.cache_file(), None);
    assert_eq!(cwasm_files(tmp.path()).len(), 2);
}

#[test]
fn compile_cached_holds_a_miss_to_the_compile_limits_and_a_hit_to_the_size() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host_caching_in(tmp.path());
    let deep = format!("(module (func {}{}))", "(loop ".repeat(40), ")".repeat(40));
    let e = host.compile_cached("deep", deep.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Limit(LimitError::ModuleTooComplex {
                what: "nested loops",
                ..
            })
        ),
        "{e}"
    );
    assert!(
        cwasm_files(tmp.path()).is_empty(),
        "a refused module is not cached"
    );
    // Cached by one host, refused by a host whose size limit it is past.
    host.compile_cached("seven", SEVEN).unwrap();
    let small = Host::builder()
        .pool_size(1)
        .cache_dir(tmp.path())
        .compile_limits(subinterp::CompileLimits::new().with_max_module_bytes(16))
        .build()
        .unwrap();
    let e = small.compile_cached("seven", SEVEN).unwrap_err();
    assert!(
        matches!(e, Error::Limit(LimitError::ModuleTooLarge { limit: 16 })),
        "{e}"
    );
}

#[test]
fn without_a_usable_cache_modules_compile_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"not a folder").unwrap();
    let blocked = Host::builder()
        .pool_size(1)
        .cache_dir(file.join("cache"))
        .build()
        .unwrap();
    let none = Host::builder().pool_size(1).no_cache().build().unwrap();
    assert_eq!(none.cache_dir(), None);
    for host in [blocked, none] {
        let guest = host.compile_cached("seven", SEVEN).unwrap();
        assert_eq!(guest.cache_file(), None);
        let interp = host.create(&guest).unwrap();
        assert_eq!(interp.run(Run::export("f")).unwrap().value, Some(7));
    }
}

#[test]
fn the_cli_caches_a_module_that_compile_put_there() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = crate::common::guest_path("hello");
    let out = subinterp_caching_in(tmp.path())
        .arg("compile")
        .arg(&hello)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (what, file) = stdout.trim_end().split_once(": ").unwrap();
    assert_eq!(what, hello.display().to_string());
    let file = PathBuf::from(file);
    assert!(file.starts_with(tmp.path().join("subinterp")), "{stdout}");
    assert_eq!(
        cwasm_files(&tmp.path().join("subinterp")),
        vec![file.clone()]
    );
    let before = identity(&file);
    // The run loads it: nothing compiled, nothing written.
    let out = subinterp_caching_in(tmp.path())
        .arg("run")
        .arg(&hello)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello from wasm"));
    assert_eq!(identity(&file), before);
    assert_eq!(cwasm_files(&tmp.path().join("subinterp")).len(), 1);
}

#[test]
fn the_cli_caches_a_module_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = crate::common::guest_path("hello");
    let run = || {
        let out = subinterp_caching_in(tmp.path())
            .arg("run")
            .arg(&hello)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    run();
    let files = cwasm_files(&tmp.path().join("subinterp"));
    assert_eq!(files.len(), 1, "{files:?}");
    let before = identity(&files[0]);
    run();
    assert_eq!(identity(&files[0]), before);
}

#[test]
fn the_cli_cache_is_under_home_without_xdg_cache_home() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = tmp.path().join("seven.wat");
    std::fs::write(&wat, SEVEN).unwrap();
    for xdg in [None, Some(""), Some("relative/cache")] {
        let mut c = subinterp();
        c.env("HOME", tmp.path()).arg("compile").arg(&wat);
        match xdg {
            None => c.env_remove("XDG_CACHE_HOME"),
            Some(v) => c.env("XDG_CACHE_HOME", v),
        };
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let home_cache = tmp.path().join(".cache/subinterp");
        assert!(
            stdout.contains(&format!("{}/seven.module.", home_cache.display())),
            "{xdg:?}: {stdout}"
        );
    }
}

#[test]
fn the_cli_runs_without_a_usable_cache_and_compile_says_why_not() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"not a folder").unwrap();
    let hello = crate::common::guest_path("hello");
    let blocked = || subinterp_caching_in(&file);
    let out = blocked().arg("run").arg(&hello).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = subinterp()
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME")
        .arg("run")
        .arg(&hello)
        .output()
        .unwrap();
    assert!(out.status.success(), "no cache at all: {out:?}");
    let out = blocked().arg("compile").arg(&hello).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not cached"), "{err}");
}

#[test]
fn the_cli_refuses_to_compile_past_a_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let deep = tmp.path().join("deep.wat");
    let wat = format!("(module (func {}{}))", "(loop ".repeat(40), ")".repeat(40));
    std::fs::write(&deep, wat).unwrap();
    let out = subinterp_caching_in(tmp.path())
        .arg("compile")
        .arg(&deep)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nested loops"));
    assert!(cwasm_files(&tmp.path().join("subinterp")).is_empty());
}

/// The JavaScript guest is inside the binary: a copy of it, run from an
/// empty folder with `SUBINTERP_JS_WASM` unset, runs JavaScript. The first
/// run compiles the guest, says so on stderr and caches it; the next one
/// loads it and says nothing. The same for `--fuel`, whose compiled code is
/// cached apart.
#[test]
fn the_embedded_js_guest_runs_with_no_file_and_is_compiled_once() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin/subinterp");
    std::fs::create_dir(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_subinterp"), &bin).unwrap();
    let cwd = tmp.path().join("empty");
    std::fs::create_dir(&cwd).unwrap();
    let cache = tmp.path().join("cache");
    let run = |extra: &[&str]| {
        let out = Command::new(&bin)
            .current_dir(&cwd)
            .env_remove("SUBINTERP_JS_WASM")
            .env("XDG_CACHE_HOME", &cache)
            .arg("run")
            .args(extra)
            .args(["-e", "console.log(6 * 7)"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
        String::from_utf8(out.stderr).unwrap()
    };
    for extra in [&[][..], &["--fuel", "1000000"][..]] {
        let first = run(extra);
        assert!(
            first.contains("subinterp: compiling the JavaScript guest"),
            "{extra:?}: {first}"
        );
        assert!(first.contains("cached in"), "{first}");
        assert_eq!(run(extra), "", "{extra:?}: the second run compiled again");
    }
    let snaps: Vec<_> = cwasm_files(&cache.join("subinterp"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("js.snap.")
        })
        .collect();
    assert_eq!(
        snaps.len(),
        2,
        "one snapshot with fuel, one without: {snaps:?}"
    );
}

/// A library prints nothing unasked: a default host compiling the
/// JavaScript guest (into `$XDG_CACHE_HOME/subinterp`, here a fresh folder)
/// writes nothing to stderr. Run in a child process, for its own stderr and
/// environment.
#[test]
fn a_default_host_caches_under_xdg_cache_home_and_prints_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "cache::child_default_host",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("SUBINTERP_CHILD", "1")
        .env("XDG_CACHE_HOME", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("figures: cached in "), "{stdout}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let files = cwasm_files(&tmp.path().join("subinterp"));
    assert_eq!(files.len(), 1, "{files:?}");
}

#[test]
#[ignore = "run by a_default_host_caches_under_xdg_cache_home_and_prints_nothing in its own process"]
fn child_default_host() {
    if !crate::common::is_child() {
        return;
    }
    let dir = PathBuf::from(std::env::var_os("XDG_CACHE_HOME").unwrap()).join("subinterp");
    let host = Host::new().unwrap();
    assert_eq!(host.cache_dir(), Some(dir.as_path()));
    let file = host.js().unwrap().cache_file().unwrap().to_path_buf();
    assert!(file.starts_with(&dir), "{}", file.display());
    println!("figures: cached in {}", file.display());
}
