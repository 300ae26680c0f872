//! JavaScript files and ES module files (issue 14): `node:fs` on the
//! directory grants only, `node:path`, and imports through the module
//! folder, from Rust and from the command line. Every test makes its own
//! files in a `tempfile` folder.

use std::path::Path;
use std::time::Duration;

use subinterp::{ErrorKind, Host, Interpreter, InterpreterBuilder, Limits, Run, RunResult};

use crate::common::{completed, host, subinterp};

fn limits() -> Limits {
    Limits::new().with_timeout(Duration::from_secs(60))
}

fn builder(host: &Host) -> InterpreterBuilder<'_> {
    host.interpreter(&host.js().unwrap()).limits(limits())
}

/// Runs `src` as an ES module and insists it completed; its stdout.
fn module(i: &Interpreter, src: &str) -> String {
    completed(i.run(Run::js_module("main.mjs", src)).unwrap()).stdout_text()
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn node_fs_reads_writes_lists_and_removes_in_a_grant() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "in.txt", "héllo\n");
    let host = host();
    let i = builder(&host)
        .dir(tmp.path(), "/data", false)
        .build()
        .unwrap();
    let out = module(
        &i,
        r#"
        import fs from "node:fs";
        import { readFile, writeFile, readdir, stat, mkdir, rm } from "node:fs/promises";
        import { readFileSync } from "fs";
        const text = fs.readFileSync("/data/in.txt", "utf8");
        const bytes = readFileSync("/data/in.txt");
        console.log(JSON.stringify(text), bytes instanceof Uint8Array, bytes.length, bytes.toString("hex"));
        fs.writeFileSync("/data/out.txt", "one");
        fs.appendFileSync("/data/out.txt", new Uint8Array([0x32]));
        await writeFile("data/p.txt", "relative to /");
        console.log(await readFile("/data/out.txt", { encoding: "utf8" }), fs.existsSync("/data/p.txt"));
        fs.mkdirSync("/data/a/b/c", { recursive: true });
        await mkdir("/data/a/b/d");
        console.log(fs.readdirSync("/data/a/b").join(","), (await readdir("/data")).join(","));
        const kinds = fs.readdirSync("/data", { withFileTypes: true }).map((d) => `${d.name}:${d.isDirectory() ? "d" : "f"}`);
        console.log(kinds.join(","));
        const s = await stat("/data/out.txt");
        console.log(s.isFile(), s.isDirectory(), s.size, s.mtime instanceof Date, fs.statSync("/data/a").isDirectory());
        fs.rmSync("/data/a", { recursive: true });
        await rm("/data/p.txt");
        fs.renameSync("/data/out.txt", "/data/moved.txt");
        console.log(fs.readdirSync("/data").join(","), fs.existsSync("/data/a"));
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "\"héllo\\n\" true 7 68c3a96c6c6f0a", "{out}");
    assert_eq!(lines[1], "one2 true", "{out}");
    assert_eq!(lines[2], "c,d a,in.txt,out.txt,p.txt", "{out}");
    assert_eq!(lines[3], "a:d,in.txt:f,out.txt:f,p.txt:f", "{out}");
    assert_eq!(lines[4], "true false 4 true true", "{out}");
    assert_eq!(lines[5], "in.txt,moved.txt false", "{out}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("moved.txt")).unwrap(),
        "one2"
    );
    assert!(!tmp.path().join("a").exists());
}

#[test]
fn node_fs_errors_have_node_codes_and_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "d/f.txt", "x");
    let host = host();
    let i = builder(&host)
        .dir(tmp.path(), "/data", false)
        .build()
        .unwrap();
    let out = module(
        &i,
        r#"
        import fs from "node:fs";
        import { readFile } from "node:fs/promises";
        const code = (f) => { try { f(); return "ok"; } catch (e) { return e.code; } };
        try { fs.readFileSync("/data/nope.txt"); } catch (e) {
          console.log(e instanceof Error, e.code, e.errno, e.syscall, e.path, e.message);
        }
        console.log(code(() => fs.mkdirSync("/data/d")), code(() => fs.rmdirSync("/data/d")),
          code(() => fs.rmSync("/data/d")), code(() => fs.readdirSync("/data/d/f.txt")),
          code(() => fs.readFileSync("/data/d")), code(() => fs.rmSync("/data/none")),
          code(() => fs.rmSync("/data/none", { force: true })), code(() => fs.writeFileSync("/data/d/f.txt", "y", { flag: "wx" })),
          fs.statSync("/data/none", { throwIfNoEntry: false }));
        console.log(await readFile("/data/none").catch((e) => e.code));
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "true ENOENT -2 open /data/nope.txt ENOENT: no such file or directory, open '/data/nope.txt'"
    );
    assert_eq!(
        lines[1],
        "EEXIST ENOTEMPTY ERR_FS_EISDIR ENOTDIR EISDIR ENOENT ok EEXIST undefined"
    );
    assert_eq!(lines[2], "ENOENT");
}

/// What a script sees for each path that leaves its grant: `..`, an
/// absolute path elsewhere, symlinks to a file and to a folder outside,
/// and a write to a read-only grant. Nothing outside is read or written.
#[test]
fn node_fs_refuses_paths_out_of_the_grants_as_wasi_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, outside) = (tmp.path().join("data"), tmp.path().join("outside"));
    write(&outside, "secret.txt", "secret");
    write(&data, "ok.txt", "ok");
    std::os::unix::fs::symlink(outside.join("secret.txt"), data.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, data.join("dirlink")).unwrap();
    let host = host();
    let ro = tmp.path().join("ro");
    write(&ro, "r.txt", "r");
    let i = builder(&host)
        .dir(&data, "/data", false)
        .dir(&ro, "/ro", true)
        .build()
        .unwrap();
    let outside_abs = outside.join("secret.txt");
    let src = format!(
        r#"
        import fs from "node:fs";
        const code = (f) => {{ try {{ return "read " + f(); }} catch (e) {{ return e.code; }} }};
        console.log([
          code(() => fs.readFileSync("/data/../outside/secret.txt", "utf8")),
          code(() => fs.readFileSync("/data/../../../../etc/hostname", "utf8")),
          code(() => fs.readFileSync({outside:?}, "utf8")),
          code(() => fs.readFileSync("/etc/passwd", "utf8")),
          code(() => fs.readFileSync("/data/link.txt", "utf8")),
          code(() => fs.readFileSync("/data/dirlink/secret.txt", "utf8")),
          code(() => fs.readdirSync("/data/dirlink")),
          code(() => fs.writeFileSync("/data/../outside/new.txt", "x")),
          code(() => fs.writeFileSync("/data/dirlink/new.txt", "x")),
          code(() => fs.writeFileSync("/ro/new.txt", "x")),
          code(() => fs.readFileSync("/ro/r.txt", "utf8")),
          code(() => fs.readFileSync("/data/ok.txt", "utf8")),
        ].join(" "));
        "#,
        outside = outside_abs.to_str().unwrap(),
    );
    let out = module(&i, &src);
    let got: Vec<&str> = out.split_whitespace().collect();
    let refused = |c: &str| c == "EPERM" || c == "EACCES";
    assert!(got[..10].iter().all(|c| refused(c)), "{out}");
    assert_eq!(&got[10..], ["read", "r", "read", "ok"], "{out}");
    assert!(!outside.join("new.txt").exists());
    assert!(!ro.join("new.txt").exists());
    // A plain absolute path that no grant holds is EACCES, as is `..`
    // climbing out (the host's refusal), whatever the file is.
    assert_eq!(got[2], "EACCES", "{out}");
}

#[test]
fn nothing_is_granted_by_default_and_a_huge_file_meets_the_memory_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host();
    let none = builder(&host).build().unwrap();
    let out = module(
        &none,
        r#"import fs from "node:fs";
        console.log(fs.existsSync("/"), (() => { try { fs.readdirSync("/"); } catch (e) { return e.code; } })());"#,
    );
    assert_eq!(out, "false EACCES\n");
    // 48 MiB against a 32 MiB ceiling: a catchable error, then the
    // interpreter carries on.
    let f = std::fs::File::create(tmp.path().join("big.bin")).unwrap();
    f.set_len(48 << 20).unwrap();
    let i = host
        .interpreter(&host.js().unwrap())
        .limits(limits().with_max_memory(32 << 20))
        .dir(tmp.path(), "/data", true)
        .build()
        .unwrap();
    let out = module(
        &i,
        r#"import fs from "node:fs";
        try { fs.readFileSync("/data/big.bin"); console.log("read"); } catch (e) { console.log(e.name, e.message); }"#,
    );
    assert_eq!(out, "InternalError out of memory\n");
    let r = i
        .run(Run::js_module(
            "uncaught.mjs",
            "import fs from 'node:fs'; fs.readFileSync('/data/big.bin');",
        ))
        .unwrap();
    assert!(
        matches!(
            r.error.as_ref().unwrap().kind,
            ErrorKind::MemoryLimit { .. }
        ),
        "{:?}",
        r.error
    );
    let r = completed(i.run(Run::js("1 + 1")).unwrap());
    assert_eq!(r.output_text(), "2");
}

#[test]
fn node_path_is_posix() {
    let host = host();
    let i = builder(&host).build().unwrap();
    let out = module(
        &i,
        r#"
        import path from "node:path";
        import { join, resolve } from "path";
        console.log([
          join("/a/b", "../c", "./d.txt"), join("a", "", "b/"), resolve("x", "../y"), resolve("/r", "s", "/t", "u"),
          path.dirname("/a/b/c.txt"), path.dirname("a"), path.basename("/a/b/c.txt"), path.basename("/a/b/c.txt", ".txt"),
          path.extname("x.tar.gz"), path.extname(".bashrc"), path.relative("/a/b/c", "/a/d"), path.normalize("/a//b/../c/."),
          path.sep, path.isAbsolute("/x"), path.isAbsolute("x"), path.posix === path, JSON.stringify(path.parse("/h/f.js")),
        ].join(" | "));
        "#,
    );
    assert_eq!(
        out.trim(),
        "/a/c/d.txt | a/b/ | /y | /t/u | /a/b | . | c.txt | c | .gz |  | ../../d | /a/c | / | true | false | true | \
         {\"root\":\"/\",\"dir\":\"/h\",\"base\":\"f.js\",\"ext\":\".js\",\"name\":\"f\"}"
    );
}

/// A module folder with a main module, a library below it, a file beside
/// the folder and a symlink out of it.
fn module_tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    write(
        &app,
        "lib/math.mjs",
        "export const add = (a, b) => a + b;\n",
    );
    write(
        &app,
        "lib/deep/up.js",
        "export { add } from '../math.mjs';\n",
    );
    write(&app, "notes.txt", "not a module");
    write(
        &app,
        "self.mjs",
        "import * as me from './self.mjs';\nexport const x = 1;\nconsole.log('self', me.x);\n",
    );
    write(
        &app,
        "a.mjs",
        "import { b } from './b.mjs';\nexport const a = () => 'a' + b();\n",
    );
    write(
        &app,
        "b.mjs",
        "import { a } from './a.mjs';\nexport const b = () => 'b';\n",
    );
    write(&app, "bad.mjs", "import './lib/nope.mjs';\n");
    write(tmp.path(), "outside.mjs", "export default 'outside';\n");
    std::os::unix::fs::symlink(tmp.path().join("outside.mjs"), app.join("link.mjs")).unwrap();
    tmp
}

fn canon(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_module_file_imports_from_its_folder_and_nothing_else() {
    let tmp = module_tree();
    let app = tmp.path().join("app");
    write(
        &app,
        "main.mjs",
        r#"
        import { add } from "./lib/math.mjs";
        import { add as again } from "./lib/deep/up.js";
        const why = async (p) => { try { await import(p); return "loaded"; } catch (e) { return e.message; } };
        console.log(add(1, 2), again === add, (await import("./lib/math.mjs")).add(2, 2));
        await import("./self.mjs");
        console.log((await import("./a.mjs")).a());
        for (const p of ["./lib/missing.mjs", "../outside.mjs", "./lib/../../outside.mjs", "./link.mjs", "./notes.txt", "/etc/passwd.js", "lodash", "node:nope", "./bad.mjs"]) {
          console.log(p, "=>", await why(p));
        }
        "#,
    );
    let host = host();
    let i = builder(&host).modules(&app).build().unwrap();
    let r = completed(
        i.run(Run::js_module_file(app.join("main.mjs")).unwrap())
            .unwrap(),
    );
    let out = r.stdout_text();
    let root = canon(&app);
    let top = canon(tmp.path());
    let expect = [
        "3 true 4".to_string(),
        "self 1".into(),
        "ab".into(),
        format!(
            "./lib/missing.mjs => cannot import '{root}/lib/missing.mjs' (from '{root}/main.mjs'): no such file"
        ),
        format!(
            "../outside.mjs => cannot import '{top}/outside.mjs' (from '{root}/main.mjs'): outside the module folder"
        ),
        format!(
            "./lib/../../outside.mjs => cannot import '{top}/outside.mjs' (from '{root}/main.mjs'): outside the module folder"
        ),
        format!(
            "./link.mjs => cannot import '{root}/link.mjs' (from '{root}/main.mjs'): outside the module folder"
        ),
        format!(
            "./notes.txt => cannot import '{root}/notes.txt' (from '{root}/main.mjs'): only .js, .mjs and .cjs files can be imported"
        ),
        format!(
            "/etc/passwd.js => cannot import '/etc/passwd.js' (from '{root}/main.mjs'): outside the module folder"
        ),
        format!(
            "lodash => cannot import 'lodash' (from '{root}/main.mjs'): only relative or absolute paths and node: built-ins can be imported"
        ),
        format!(
            "node:nope => cannot import 'node:nope' (from '{root}/main.mjs'): no such built-in module"
        ),
        format!(
            "./bad.mjs => cannot import '{root}/lib/nope.mjs' (from '{root}/bad.mjs'): no such file"
        ),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expect, "{out}");
}

#[test]
fn the_module_folder_is_for_imports_not_for_fs_unless_granted() {
    let tmp = module_tree();
    let app = tmp.path().join("app");
    let root = canon(&app);
    let src = format!(
        r#"import fs from "node:fs";
        try {{ console.log(fs.readFileSync("{root}/notes.txt", "utf8")); }} catch (e) {{ console.log(e.code, e.message); }}"#
    );
    let host = host();
    let i = builder(&host).modules(&app).build().unwrap();
    let out = module(&i, &src);
    assert_eq!(
        out,
        format!(
            "EACCES EACCES: permission denied (the module folder is granted to imports only), open '{root}/notes.txt'\n"
        )
    );
    // Granted under the same guest path, it is the script's too.
    let i = builder(&host)
        .modules(&app)
        .dir(&app, &root, true)
        .build()
        .unwrap();
    assert_eq!(module(&i, &src), "not a module\n");
    let r = completed(
        i.run(Run::js(
            "import('./lib/math.mjs').then((m) => console.log(m.add(20, 22)))",
        ))
        .unwrap(),
    );
    assert_eq!(
        r.stdout_text(),
        "42\n",
        "a script imports from the folder too"
    );
}

#[test]
fn a_deep_chain_of_imports_fails_cleanly_or_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 3000;
    for k in 0..n {
        let body = if k + 1 < n {
            format!(
                "import {{ v as u }} from './c{}.mjs';\nexport const v = u;\n",
                k + 1
            )
        } else {
            "export const v = 1;\n".to_string()
        };
        write(tmp.path(), &format!("c{k}.mjs"), &body);
    }
    write(tmp.path(), "solo.mjs", "export const v = 1;\n");
    write(
        tmp.path(),
        "short.mjs",
        "import { v } from './solo.mjs';\nconsole.log('short', v);\n",
    );
    let host = host();
    let i = builder(&host).modules(tmp.path()).build().unwrap();
    let r = i
        .run(Run::js_module_file(tmp.path().join("c0.mjs")).unwrap())
        .unwrap();
    if !r.completed {
        let e = r.error.unwrap();
        assert!(
            matches!(&e.kind, ErrorKind::Exception { name } if name == "RangeError"),
            "{e:?}"
        );
    }
    // The interpreter is still usable.
    let r = completed(
        i.run(Run::js_module_file(tmp.path().join("short.mjs")).unwrap())
            .unwrap(),
    );
    assert_eq!(r.stdout_text(), "short 1\n");
}

#[test]
fn children_run_module_files_within_their_creators_folder_only() {
    let tmp = module_tree();
    let app = tmp.path().join("app");
    write(
        &app,
        "lib/worker.mjs",
        "import { add } from './math.mjs';\nimport fs from 'node:fs';\n\
         const denied = (() => { try { fs.readdirSync('/data'); return 'read'; } catch (e) { return e.code; } })();\n\
         channels.out.send(`${add(40, 2)} ${await Promise.resolve('tla')} ${denied}`);\n",
    );
    write(&app, "data/x.txt", "x");
    write(
        &app,
        "main.mjs",
        r#"
        const w = interpreters.create();
        const [r, s] = interpreters.createChannel();
        const res = w.runModule("./lib/worker.mjs", { channels: { out: s } });
        console.log(res.completed, r.recv().text());
        const job = w.startModule("lib/worker.mjs", { channels: { out: s } });
        console.log(job.join().completed, r.recv().text());
        const bad = w.runModule("bad.mjs");
        console.log(bad.completed, bad.error.type, bad.error.message.includes("lib/nope.mjs"));
        for (const p of ["../outside.mjs", "./link.mjs", "notes.txt"]) {
          try { w.runModule(p); console.log("ran", p); } catch (e) { console.log(e.name, e.message.split(": ").pop()); }
        }
        "#,
    );
    let host = host();
    let i = builder(&host)
        .modules(&app)
        .dir(app.join("data"), "/data", true)
        .build()
        .unwrap();
    let r = completed(
        i.run(Run::js_module_file(app.join("main.mjs")).unwrap())
            .unwrap(),
    );
    assert_eq!(
        r.stdout_text(),
        "true 42 tla EACCES\ntrue 42 tla EACCES\nfalse ReferenceError true\n\
         ReferenceError outside the module folder\nReferenceError outside the module folder\n\
         ReferenceError only .js, .mjs and .cjs files can be imported\n",
        "a child gets the module folder, not its creator's --dir grants"
    );
    // Without a module folder there is nothing to run a module from.
    let plain = builder(&host).build().unwrap();
    let r = plain
        .run(Run::js("interpreters.create().runModule('./x.mjs')"))
        .unwrap();
    assert!(
        r.error.unwrap().message.contains("no module folder"),
        "runModule needs a folder"
    );
}

fn run_cli(args: &[&str], cwd: &Path) -> std::process::Output {
    subinterp().args(args).current_dir(cwd).output().unwrap()
}

#[test]
fn cli_module_files_import_from_their_folder_and_scripts_read_granted_dirs() {
    let tmp = module_tree();
    let app = tmp.path().join("app");
    write(&app, "data/in.txt", "from a grant");
    write(
        &app,
        "main.mjs",
        "import { add } from './lib/math.mjs';\nimport { readFileSync } from 'node:fs';\n\
         console.log(add(1, 1), readFileSync('/data/in.txt', 'utf8'), process.argv.slice(2).join(','));\n",
    );
    let grant = format!("{}:/data:ro", app.join("data").display());
    // Run from another folder: imports resolve from the module's own.
    let out = run_cli(
        &["run", "--dir", &grant, "app/main.mjs", "x", "y"],
        tmp.path(),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 from a grant x,y\n");
    // --module makes a .js file a module too.
    write(
        &app,
        "m.js",
        "import { add } from './lib/math.mjs';\nconsole.log(add(2, 3));\n",
    );
    let out = run_cli(&["run", "--module", "app/m.js"], tmp.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n", "{out:?}");
    let out = run_cli(&["run", "app/m.js"], tmp.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "a classic script cannot `import`"
    );
    // An import that cannot be resolved names the path; exit code 1.
    let out = run_cli(&["run", "app/bad.mjs"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let root = canon(&app);
    assert!(
        err.contains(&format!("ReferenceError: cannot import '{root}/lib/nope.mjs' (from '{root}/bad.mjs'): no such file")),
        "{err}"
    );
    // The folder is not the script's: fs cannot read it without --dir.
    write(
        &app,
        "peek.mjs",
        &format!("import fs from 'node:fs';\nfs.readFileSync('{root}/notes.txt');\n"),
    );
    let out = run_cli(&["run", "--json", "app/peek.mjs"], tmp.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["completed"], false);
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with(
            "EACCES: permission denied (the module folder is granted to imports only)"
        ),
        "{v}"
    );
}

/// `RunResult`'s completion value, for the short checks above.
trait OutputText {
    fn output_text(&self) -> String;
}

impl OutputText for RunResult {
    fn output_text(&self) -> String {
        String::from_utf8_lossy(self.output.as_deref().unwrap_or_default()).into_owned()
    }
}
