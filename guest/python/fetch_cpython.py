"""Downloads CPython's source tarball through Debian's source packages.

Usage: fetch_cpython.py DIR PACKAGE UPSTREAM_VERSION

No crate or PyPI package carries CPython's source, but Debian's archive does:
trixie's `python3.13` source package has upstream's own tarball as its
`.orig.tar.xz`. This writes a private APT configuration under DIR/apt whose
deb-src entries are this machine's own Debian mirrors (read from
/etc/apt/sources.list and /etc/apt/sources.list.d), with the release renamed
to trixie, updates those lists only, and runs `apt-get source --download-only
--tar-only` for a version of PACKAGE whose upstream part is UPSTREAM_VERSION.
The tarball lands in DIR; the Makefile checks its sha256. Nothing outside DIR
is changed. On a machine that is not Debian-like, pass the tarball with
`make guest CPYTHON_SRC=/path/to/Python-3.13.5.tar.xz` instead.
"""

import glob
import os
import re
import subprocess
import sys

TARGET_RELEASE = "trixie"


def codename():
    try:
        for line in open("/etc/os-release", encoding="utf-8"):
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def configured_sources():
    """(uris, suites, signed_by) of every enabled `deb` entry on this machine."""
    out = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", open(path, encoding="utf-8").read()):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            out.append((fields.get("uris", "").split(), fields.get("suites", "").split(),
                        fields.get("signed-by", "")))
    lists = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in lists:
        if not os.path.exists(path):
            continue
        for line in open(path, encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            m = re.match(r"deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                opts = m.group(1) or ""
                signed = re.search(r"signed-by=(\S+?)\]?(\s|$)", opts)
                out.append(([m.group(2)], [m.group(3)], signed.group(1) if signed else ""))
    return out


def private_sources(own):
    """deb822 text: the machine's Debian mirrors, as deb-src, for trixie."""
    stanzas = []
    for uris, suites, signed_by in configured_sources():
        renamed = []
        for s in suites:
            base, sep, tail = s.partition("-")
            if base in (own, TARGET_RELEASE):
                renamed.append(TARGET_RELEASE + sep + tail)
        if not renamed or not uris:
            continue
        st = f"Types: deb-src\nURIs: {' '.join(uris)}\nSuites: {' '.join(renamed)}\nComponents: main\n"
        if signed_by:
            st += f"Signed-By: {signed_by}\n"
        stanzas.append(st)
    return "\n".join(stanzas)


def main():
    dest, package, upstream = sys.argv[1:4]
    own = codename()
    text = private_sources(own)
    if not text:
        sys.exit(f"fetch_cpython: no Debian mirror found in this machine's APT sources "
                 f"(release {own or 'unknown'}); pass CPYTHON_SRC=/path/to/Python-{upstream}.tar.xz")
    apt = os.path.abspath(os.path.join(dest, "apt"))
    for d in ("lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "debian.sources"), "w", encoding="utf-8") as fh:
        fh.write(text)
    opts = [
        "-o", "Dir::Etc::SourceList=/dev/null",
        "-o", f"Dir::Etc::SourceParts={apt}/parts",
        "-o", f"Dir::State::Lists={apt}/lists",
        "-o", f"Dir::Cache={apt}/cache",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]
    os.makedirs(os.path.join(apt, "parts"), exist_ok=True)
    os.replace(os.path.join(apt, "debian.sources"), os.path.join(apt, "parts", "debian.sources"))
    subprocess.run(["apt-get", *opts, "-q", "update"], check=True)
    shown = subprocess.run(["apt-cache", *opts, "showsrc", package], check=True,
                           capture_output=True, text=True).stdout
    available = re.findall(r"^Version: (\S+)$", shown, re.M)
    versions = [v for v in available if v.split(":")[-1].startswith(upstream + "-")]
    if not versions:
        sys.exit(f"fetch_cpython: Debian's {TARGET_RELEASE} no longer has {package} {upstream} "
                 f"(it has {sorted(set(available))}); "
                 f"pass CPYTHON_SRC=/path/to/Python-{upstream}.tar.xz")
    subprocess.run(["apt-get", *opts, "-q", "source", "--download-only", "--tar-only",
                    f"{package}={versions[0]}"], check=True, cwd=dest)


if __name__ == "__main__":
    main()
