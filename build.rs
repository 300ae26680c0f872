//! Embeds the JavaScript guest (`target/guest/js.wasm`, built by
//! `make guest`) in the library, so that an application depending on
//! subinterp runs JavaScript with no file beside it. The guest's SHA-256 is
//! computed here, once, so that a start-up never hashes it (it names the
//! guest's compiled code in the cache).
//!
//! Where the guest comes from: `$SUBINTERP_JS_WASM` when set, else
//! `target/guest/js.wasm` in this source tree. Missing, the build fails and
//! says how to make it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    println!("cargo:rerun-if-env-changed=SUBINTERP_JS_WASM");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let source = match std::env::var_os("SUBINTERP_JS_WASM") {
        Some(p) => PathBuf::from(p),
        None => manifest.join("target/guest/js.wasm"),
    };
    println!("cargo:rerun-if-changed={}", source.display());
    let bytes = match std::fs::read(&source) {
        Ok(b) => b,
        Err(e) => fail(&source, &e, std::env::var_os("SUBINTERP_JS_WASM").is_some()),
    };
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // The very bytes hashed are the ones embedded: a copy, so that a guest
    // rebuilt while this runs cannot pair one file's digest with another's
    // bytes.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("js.wasm");
    std::fs::write(&out, &bytes).expect("writing the embedded guest into OUT_DIR");
    println!("cargo:rustc-env=SUBINTERP_EMBEDDED_JS_SHA256={hex}");
}

fn fail(source: &Path, e: &std::io::Error, from_env: bool) -> ! {
    let how = if from_env {
        "SUBINTERP_JS_WASM names it: point it at a built js.wasm, or unset it and\n\
         build the guests with `make guest` (in subinterp's source tree)."
    } else {
        "Build the guests first with `make guest` (in subinterp's source tree), or set\n\
         SUBINTERP_JS_WASM to the path of a built js.wasm."
    };
    eprintln!(
        "\nerror: subinterp embeds its JavaScript guest, and {} cannot be read ({e}).\n{how}\n",
        source.display()
    );
    std::process::exit(1);
}
