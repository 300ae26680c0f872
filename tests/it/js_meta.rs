//! `import.meta.url`, `.filename` and `.dirname` of JavaScript module
//! files (as Node's): the main module of a module file run, the files it
//! imports, and module files a child runs; from Rust and the CLI.

use std::path::Path;
use std::time::Duration;

use subinterp::{Limits, Run};

use crate::common::{completed, host, subinterp};

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A module folder whose name needs percent-encoding in a URL, with a main
/// module, a library and a worker; and the folder's canonical path.
fn app() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("a b#é%");
    write(&app, "lib/x.mjs", "export const meta = import.meta;\n");
    write(
        &app,
        "lib/worker.mjs",
        "channels.out.send(`${import.meta.url} ${import.meta.dirname}`);\n",
    );
    write(
        &app,
        "main.mjs",
        r#"import { meta } from "./lib/x.mjs";
console.log(import.meta.url);
console.log(import.meta.filename, import.meta.dirname);
console.log(meta.url, meta.filename, meta.dirname);
console.log(decodeURIComponent(new URL(import.meta.url).pathname) === import.meta.filename);
const w = interpreters.create();
const [r, s] = interpreters.createChannel();
w.runModule("./lib/worker.mjs", { channels: { out: s } });
console.log(r.recv().text());
"#,
    );
    let root = std::fs::canonicalize(&app).unwrap();
    (tmp, root.to_str().unwrap().to_string())
}

/// What main.mjs prints for the folder `root` (tempfile's names need no
/// escaping; the folder's own name does).
fn want(root: &str) -> String {
    let parent = &root[..root.rfind('/').unwrap()];
    assert!(
        parent
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)),
        "{parent}"
    );
    let url = format!("file://{parent}/a%20b%23%C3%A9%25");
    format!(
        "{url}/main.mjs\n{root}/main.mjs {root}\n{url}/lib/x.mjs {root}/lib/x.mjs {root}/lib\ntrue\n\
         {url}/lib/worker.mjs {root}/lib\n"
    )
}

#[test]
fn module_files_know_their_url_filename_and_dirname() {
    let (_tmp, root) = app();
    let host = host();
    let i = host
        .interpreter(&host.js().unwrap())
        .limits(Limits::new().with_timeout(Duration::from_secs(60)))
        .modules(&root)
        .build()
        .unwrap();
    let main = Path::new(&root).join("main.mjs");
    let r = completed(i.run(Run::js_module_file(&main).unwrap()).unwrap());
    assert_eq!(r.stdout_text(), want(&root));
    // A module named by something other than a path has no file: URL.
    let r = completed(
        i.run(Run::js_module(
            "inline",
            "console.log(import.meta.url, import.meta.filename, Object.keys(import.meta).length);",
        ))
        .unwrap(),
    );
    assert_eq!(r.stdout_text(), "undefined undefined 0\n");
}

#[test]
fn import_meta_through_the_cli() {
    let (tmp, root) = app();
    let out = subinterp()
        .args(["run", "a b#é%/main.mjs"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want(&root));
}
