//! `keygen`, `publish` and `serve` as a gatherer author uses them.

use testkit as common;

use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gather-agent"))
}

#[test]
fn keygen_publish_twice_is_content_addressed_and_signed() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("p.key");
    let o = bin().arg("keygen").arg("--out").arg(&key).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let public = std::fs::read_to_string(dir.path().join("p.key.pub")).unwrap().trim().to_owned();
    assert!(String::from_utf8_lossy(&o.stdout).contains(&public));
    let again = bin().arg("keygen").arg("--out").arg(&key).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"), "keys are not overwritten silently");

    let modules = dir.path().join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    for (name, bytes) in common::built_gatherers() {
        std::fs::write(modules.join(name), bytes).unwrap();
    }
    let site = dir.path().join("site");
    let publish = || bin().args(["publish", "--modules"]).arg(&modules).arg("--out").arg(&site).arg("--key").arg(&key).output().unwrap();
    let o = publish();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("published serial 1") && out.contains(&format!("--public-key {public}")), "{out}");
    let files = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let first = files(&site);
    assert_eq!(first.len(), common::built_gatherers().len() + 2, "every module, index.json, index.json.sig: {first:?}");

    let o = publish();
    assert!(String::from_utf8_lossy(&o.stdout).contains("published serial 2"));
    assert_eq!(files(&site), first, "re-publishing unchanged modules adds no file");
    let index_bytes = std::fs::read(site.join("index.json")).unwrap();
    let index = agent::index::Index::parse(&index_bytes).unwrap();
    assert_eq!(index.serial, 2);
    let pk = agent::index::parse_public_key(&public).unwrap();
    agent::index::verify(&pk, &index_bytes, &std::fs::read(site.join("index.json.sig")).unwrap()).unwrap();
    for g in &index.gatherers {
        let bytes = std::fs::read(site.join(&g.url)).unwrap();
        assert_eq!(agent::util::sha256_hex(&bytes), g.sha256);
        assert_eq!(g.url, format!("{}.wasm", g.sha256));
        assert!(!g.permissions.is_empty(), "permissions are read from the module");
    }

    // A broken module makes the whole publish fail and leaves the site untouched.
    std::fs::write(modules.join("broken.wasm"), b"nope").unwrap();
    let o = publish();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("broken.wasm"));
    assert_eq!(std::fs::read(site.join("index.json")).unwrap(), index_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_strong_etags_and_304s_and_nothing_outside_the_site() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.json"), b"{}").unwrap();
    std::fs::write(dir.path().join(".hidden"), b"secret").unwrap();
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    // The workspace's one TLS backend (ring) must be installed before any reqwest client.
    agent::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let r = client.get(format!("{base}/index.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", agent::util::sha256_hex(b"{}")), "a strong ETag: the content hash");
    let r = client.get(format!("{base}/index.json")).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = client.get(format!("{base}/index.json")).header("If-None-Match", "\"other\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    for path in ["/.hidden", "/../etc/passwd", "/%2e%2e/etc/passwd", "/"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = client.put(format!("{base}/index.json")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 405);
    let _ = child.kill();
}

/// A site is for a web server running as another user: files 0644 and a new site dir 0755
/// whatever the umask (publish writes through private temp files), and the printed paths
/// have no `//` when `--out` ends with a slash.
#[cfg(unix)]
#[test]
fn the_published_site_is_world_readable_and_its_paths_are_clean() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("p.key");
    assert!(bin().arg("keygen").arg("--out").arg(&key).output().unwrap().status.success());
    let modules = dir.path().join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(modules.join("x.wasm"), common::hello("x", "1.0.0", "x")).unwrap();
    let site = dir.path().join("site");
    for umask in ["022", "077"] {
        let _ = std::fs::remove_dir_all(&site);
        // The umask is the shell's, inherited by exec.
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" publish --modules \"$1\" --out \"$2/\" --key \"$3\""))
            .arg(env!("CARGO_BIN_EXE_gather-agent"))
            .arg(&modules)
            .arg(&site)
            .arg(&key)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!("signed: {}/index.json.sig\n", site.display())), "{out}");
        assert!(!out.contains("//"), "{out}");
        assert_eq!(std::fs::metadata(&site).unwrap().permissions().mode() & 0o777, 0o755, "umask {umask}: the site dir");
        let files: Vec<_> = std::fs::read_dir(&site).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 3, "the module, index.json, index.json.sig and no temp file: {files:?}");
        for f in files {
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o644, "umask {umask}: {}", f.display());
        }
    }
}
