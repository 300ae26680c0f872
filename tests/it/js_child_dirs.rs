//! A JavaScript child given part of its creator's directory grants
//! (`interpreters.create({ dirs })`, the ABI's `"dirs"`): at most what the
//! creator has — a directory at or below one of its grants, read-only
//! where that grant is — and hostile asks (`..`, symlinks out of the grant,
//! paths outside every grant, files, writable below read-only) refused with
//! `EACCES` before anything is created.

use std::path::Path;
use std::time::Duration;

use subinterp::{Limits, Run};

use crate::common::{completed, host, subinterp};

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `data/` (granted read-write as /data) with `sub/`, `other/`, a symlink
/// out of the grant and one within it; `ro/` (granted read-only as /ro);
/// `outside/` granted to nobody.
fn tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write(t, "data/sub/f.txt", "sub file");
    write(t, "data/other/secret.txt", "other secret");
    write(t, "ro/x/r.txt", "read only");
    write(t, "outside/secret.txt", "outside secret");
    std::os::unix::fs::symlink(t.join("outside"), t.join("data/sub/out")).unwrap();
    std::os::unix::fs::symlink("sub", t.join("data/in")).unwrap();
    tmp
}

/// The JS that tries each ask and what the child can then do.
const SCRIPT: &str = r#"
const show = (f) => { try { return String(f()); } catch (e) { return e.code ? `${e.name} ${e.code}` : e.name; } };
// What a child given `dirs` can do with the files in `tries` ([op, path]).
const probe = (dirs, tries) => {
  let w;
  const made = show(() => { w = interpreters.create({ dirs }); return "created"; });
  if (made !== "created") return made;
  const [r, s] = interpreters.createChannel();
  const res = w.run(`(async () => {
    const { default: fs } = await import("node:fs");
    const out = [];
    for (const [op, p] of ${JSON.stringify(tries)}) {
      try { out.push(op === "r" ? fs.readFileSync(p, "utf8") : (fs.writeFileSync(p, "w"), "wrote")); }
      catch (e) { out.push(e.code); }
    }
    channels.out.send(out.join(","));
  })()`, { channels: { out: s } });
  if (!res.completed) return JSON.stringify(res.error);
  return r.recv().text();
};
console.log(probe(["/data/sub"], [["r", "/data/sub/f.txt"], ["w", "/data/sub/new.txt"], ["r", "/data/other/secret.txt"],
  ["r", "/data/sub/../other/secret.txt"], ["r", "/data/sub/out/secret.txt"], ["r", "/ro/x/r.txt"]]));
console.log(probe([{ path: "/data", readOnly: true }], [["r", "/data/other/secret.txt"], ["w", "/data/sub/ro.txt"]]));
console.log(probe(["/ro/x"], [["r", "/ro/x/r.txt"], ["w", "/ro/x/w.txt"]]));
console.log(probe(["/data/./in/"], [["r", "/data/in/f.txt"], ["r", "/data/sub/f.txt"]]));
for (const dirs of [["/data/sub/../other"], ["/etc"], ["/"], ["/data/sub/out"], ["/data/in/out"], ["data/sub"],
                    ["/data/sub/f.txt"], ["/data/nope"], [{ path: "/ro/x", readOnly: false }], ["/data/sub", "/outside"],
                    "/data", [null], Array(65).fill("/data/sub")]) {
  console.log(probe(dirs, []));
}
// A grandchild gets at most what its parent was given.
const w = interpreters.create({ dirs: ["/data"] });
const [r, s] = interpreters.createChannel();
w.run(`const show = ${show};
  channels.out.send([show(() => interpreters.create({ dirs: ["/data/sub"] }) && "created"),
                     show(() => interpreters.create({ dirs: ["/ro"] }) && "created")].join(","));`, { channels: { out: s } });
console.log(r.recv().text());
"#;

#[test]
fn a_child_gets_parts_of_its_creators_grants_and_nothing_more() {
    let tmp = tree();
    let t = tmp.path();
    let host = host();
    let i = host
        .interpreter(&host.js().unwrap())
        .limits(Limits::new().with_timeout(Duration::from_secs(60)))
        .dir(t.join("data"), "/data", false)
        .dir(t.join("ro"), "/ro", true)
        .build()
        .unwrap();
    let r = completed(i.run(Run::js(SCRIPT)).unwrap());
    let denied = "Error EACCES";
    let mut want = vec![
        "sub file,wrote,EACCES,EPERM,EPERM,EACCES".to_string(),
        "other secret,EPERM".into(),
        "read only,EPERM".into(),
        "sub file,EACCES".into(),
    ];
    want.extend(std::iter::repeat_n(denied.to_string(), 10));
    want.extend(["TypeError".into(), "TypeError".into(), "TypeError".into()]);
    want.push(format!("created,{denied}"));
    assert_eq!(r.stdout_text(), want.join("\n") + "\n");
    assert_eq!(
        std::fs::read_to_string(t.join("data/sub/new.txt")).unwrap(),
        "w"
    );
    assert!(!t.join("data/sub/ro.txt").exists() && !t.join("ro/x/w.txt").exists());
}

#[test]
fn a_childs_grant_through_the_cli_and_its_refusal_message() {
    let tmp = tree();
    let grant = format!("{}:/data", tmp.path().join("data").display());
    let out = subinterp()
        .args([
            "run",
            "--dir",
            &grant,
            "-e",
            r#"const w = interpreters.create({ dirs: [{ path: "/data/sub", readOnly: true }] });
               const [r, s] = interpreters.createChannel();
               w.run(`import("node:fs").then(({ default: fs }) => channels.out.send(fs.readdirSync("/data/sub").sort().join(" ")))`, { channels: { out: s } });
               console.log(r.recv().text());
               try { interpreters.create({ dirs: ["/data/../etc"] }); } catch (e) { console.log(e.message); }"#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "f.txt out\ninterpreters.create: cannot give [\"/data/../etc\"]: a child's directory must be one of \
         this interpreter's directory grants or below one (an absolute path, no '..', no symlink out of it), \
         and read-only where that grant is\n"
    );
}

/// The ABI's `"dirs"` from a guest that writes the JSON itself (Python's
/// raw `_subinterp` module): malformed asks are `SI_ERR_INVALID`, asks
/// outside the grants `SI_ERR_DENIED`, and neither creates anything.
#[test]
fn hostile_dirs_json_is_invalid_or_denied() {
    let tmp = tree();
    let host = host();
    let py = host
        .interpreter(&host.python().unwrap())
        .limits(Limits::new().with_timeout(Duration::from_secs(120)))
        .dir(tmp.path().join("data"), "/d", true)
        .build()
        .unwrap();
    let r = completed(
        py.run(Run::python(
            r#"
import json, _subinterp as si
asks = [
    {"dirs": "x"}, {"dirs": [1]}, {"dirs": [{"path": 1}]}, {"dirs": [{"path": "/d", "read_only": "y"}]},
    {"dirs": [{"path": "/d", "x": 1}]}, {"dirs": [{}]}, {"dirs": [{"path": "/d"}] * 65}, {"dirs": None},
    {"dirs": [{"path": "/d/\u0000"}]}, {"dirs": [{"path": "/d/" + "a" * 100000}]},
    {"dirs": [{"path": "/d/" + "../" * 1000}]}, {"dirs": [{"path": "/d", "read_only": False}]},
    {"dirs": [{"path": "/d/sub/out"}]}, {"dirs": [{"path": ""}]},
]
before = si.view_read(si.interp_list())
codes = [si.interp_create(json.dumps(a)) for a in asks]
print(" ".join(str(c) for c in codes))
assert si.view_read(si.interp_list()) == before
ok = si.interp_create(json.dumps({"dirs": [{"path": "/d/sub", "read_only": True}, {"path": "//d/./other/"}]}))
print(ok > 0)
"#,
        ))
        .unwrap(),
    );
    let (inv, den) = (subinterp::abi::ERR_INVALID, subinterp::abi::ERR_DENIED);
    let want = [
        inv, inv, inv, inv, inv, inv, inv, inv, den, den, den, den, den, den,
    ];
    let want: Vec<String> = want.iter().map(i32::to_string).collect();
    assert_eq!(r.stdout_text(), format!("{}\nTrue\n", want.join(" ")));
}
