//! The Java runtimes (java11, java17, java21): a JDK from the host and AWS's
//! own runtime interface client, launched the way AWS's managed runtime
//! launches it.
//!
//! Why over 800 lines: about 240 of them are unit tests (JDK discovery, the
//! command line, the RIC download with its checksums).
//!
//! The runtime classes are not Strato's: `aws-lambda-java-runtime-interface-client`
//! loads the handler (`package.Class::method` or a `RequestHandler` /
//! `RequestStreamHandler` class) through its customer class loader, which
//! reads `/var/task`, `/var/task/lib/*.jar` and `/opt/java/lib/*.jar` (the
//! working directory is `/var/task`), serialises POJOs, builds the `Context`
//! and reports errors. Strato pins one set of jars, installs it from Maven
//! into `<runtimes dir>/java/`, and binds it read-only at `/var/runtime`,
//! so the class path is AWS's `/var/runtime/lib/*`.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use strato_model::Runtime;
use strato_sandbox::BindMount;

use super::maven::{Artifact, Fetcher, MavenError, Progress};
use super::{LANG_DIR, RUNTIME_DIR};

/// The runtime interface client and everything it needs at run time, at
/// the versions its POM names (its manifest's `Class-Path` lists them).
pub const RUNTIME_INTERFACE_CLIENT: Artifact = Artifact {
    group: "com.amazonaws",
    artifact: "aws-lambda-java-runtime-interface-client",
    version: "2.10.1",
};
pub const LAMBDA_JAVA_CORE: Artifact = Artifact {
    group: "com.amazonaws",
    artifact: "aws-lambda-java-core",
    version: "1.4.0",
};
pub const ARTIFACTS: [Artifact; 5] = [
    RUNTIME_INTERFACE_CLIENT,
    LAMBDA_JAVA_CORE,
    Artifact {
        group: "com.amazonaws",
        artifact: "aws-lambda-java-serialization",
        version: "1.2.0",
    },
    Artifact {
        group: "software.amazon.awssdk",
        artifact: "utils-lite",
        version: "2.34.0",
    },
    Artifact {
        group: "software.amazon.awssdk",
        artifact: "annotations",
        version: "2.34.0",
    },
];

/// The RIC's entry point; its only argument is the handler.
pub const MAIN_CLASS: &str = "com.amazonaws.services.lambda.runtime.api.client.AWSLambda";
/// The JNI half of the RIC (its Runtime API client), unpacked at install
/// time so that no instance has to copy it into its own `/tmp`.
const JNI_LIBRARY: &str = "libaws-lambda-jni.linux-x86_64.so";
const JNI_PROPERTY: &str =
    "com.amazonaws.services.lambda.runtime.api.client.runtimeapi.NativeClient.JNI";
/// Written last: an installation without it is incomplete.
const MARKER: &str = "strato-installed";

/// Where JDKs are looked for on the host.
pub const JVM_ROOTS: [&str; 1] = ["/usr/lib/jvm"];
/// `/etc` directories the sandbox binds anyway.
const ETC_ALREADY_BOUND: [&str; 3] = ["/etc/ssl", "/etc/ca-certificates", "/etc/alternatives"];

/// A JDK (or JRE) found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jvm {
    /// The installation directory on the host.
    pub home: PathBuf,
    /// `java` as seen inside an instance.
    pub program: PathBuf,
    /// Bound at `/var/lang` when the JDK lives outside the host's `/usr`.
    pub prefix: Option<PathBuf>,
    /// Host `/etc` directories the JDK's files link into (Debian keeps
    /// `jvm.cfg` and `java.security` under `/etc/java-17-openjdk`).
    pub etc_dirs: Vec<PathBuf>,
    /// `17.0.15`
    pub version: String,
    pub major: u32,
    /// `Eclipse Adoptium Temurin-25.0.3+9`, from the `release` file.
    pub implementor: Option<String>,
}

/// The Java major version a runtime identifier asks for.
pub fn wanted_major(runtime: Runtime) -> u32 {
    match runtime {
        Runtime::Java11 => 11,
        Runtime::Java17 => 17,
        Runtime::Java25 => 25,
        _ => 21,
    }
}

/// `KEY="value"` lines of a JDK's `release` file.
fn release_value(release: &str, key: &str) -> Option<String> {
    release.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// `17.0.15` → 17, `1.8.0_402` → 8
fn major_of(version: &str) -> Option<u32> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// Symlinks below `dir` (a few levels deep) that point into `/etc/NAME`:
/// the `/etc/NAME` directories.
fn etc_links(dir: &Path, depth: u32, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let Ok(target) = fs::read_link(&path) else {
                continue;
            };
            let mut components = target.components();
            let (Some(std::path::Component::RootDir), Some(first), Some(second)) =
                (components.next(), components.next(), components.next())
            else {
                continue;
            };
            if first.as_os_str() != "etc" {
                continue;
            }
            let etc_dir = Path::new("/etc").join(second.as_os_str());
            if !ETC_ALREADY_BOUND.iter().any(|b| etc_dir == Path::new(b))
                && etc_dir.is_dir()
                && !found.contains(&etc_dir)
            {
                found.push(etc_dir);
            }
        } else if meta.is_dir() && depth > 0 {
            etc_links(&path, depth - 1, found);
        }
    }
}

/// Reads one JDK installation; `None` when it is not one.
pub fn inspect_jvm(home: &Path) -> Option<Jvm> {
    let release = fs::read_to_string(home.join("release")).ok()?;
    let version = release_value(&release, "JAVA_VERSION")?;
    let major = major_of(&version)?;
    if !home.join("bin").join("java").is_file() {
        return None;
    }
    let implementor = match (
        release_value(&release, "IMPLEMENTOR"),
        release_value(&release, "IMPLEMENTOR_VERSION"),
    ) {
        (Some(i), Some(v)) => Some(format!("{i} {v}")),
        (i, v) => i.or(v),
    };
    let (program, prefix) = if home.starts_with("/usr") {
        (home.join("bin").join("java"), None)
    } else {
        (
            PathBuf::from(LANG_DIR).join("bin").join("java"),
            Some(home.to_path_buf()),
        )
    };
    let mut etc_dirs = Vec::new();
    for sub in ["lib", "conf"] {
        etc_links(&home.join(sub), 4, &mut etc_dirs);
    }
    Some(Jvm {
        home: home.to_path_buf(),
        program,
        prefix,
        etc_dirs,
        version,
        major,
        implementor,
    })
}

/// Every JDK under `roots`, each once (Debian adds symlinked aliases).
pub fn find_jvms(roots: &[&Path]) -> Vec<Jvm> {
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for root in roots {
        let Ok(entries) = fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            let Ok(real) = fs::canonicalize(&dir) else {
                continue;
            };
            if seen.contains(&real) {
                continue;
            }
            seen.push(real.clone());
            if let Some(jvm) = inspect_jvm(&real) {
                found.push(jvm);
            }
        }
    }
    found
}

/// The JVM for a runtime: the same major version or, the platform patching
/// forward, the nearest newer one.
pub fn jvm_for(jvms: &[Jvm], runtime: Runtime) -> Option<&Jvm> {
    let want = wanted_major(runtime);
    jvms.iter()
        .filter(|j| j.major >= want)
        .min_by_key(|j| (j.major, std::cmp::Reverse(j.version.clone())))
}

/// The installed runtime interface client: `lib/*.jar` and `lib/jni/`.
#[derive(Debug, Clone)]
pub struct RicInstall {
    /// `<runtimes dir>/java/ric-2.10.1`, bound at `/var/runtime`.
    pub dir: PathBuf,
}

impl RicInstall {
    pub fn new(runtimes_dir: &Path) -> RicInstall {
        RicInstall {
            dir: java_root(runtimes_dir).join(format!("ric-{}", RUNTIME_INTERFACE_CLIENT.version)),
        }
    }

    pub fn is_installed(&self) -> bool {
        self.dir.join(MARKER).is_file()
    }

    /// A jar of the set, on the host.
    pub fn jar(&self, artifact: &Artifact) -> PathBuf {
        self.dir.join("lib").join(artifact.file_name())
    }

    /// Whether the RIC's JNI library is installed (launch plans name it).
    pub fn has_jni_library(&self) -> bool {
        self.dir.join("lib").join("jni").join(JNI_LIBRARY).is_file()
    }
}

fn java_root(runtimes_dir: &Path) -> PathBuf {
    runtimes_dir.join("java")
}

/// The heap limit AWS gives a function's JVM: 85% of its memory.
pub fn max_heap_arg(memory_mb: i64) -> String {
    format!(
        "-XX:MaxHeapSize={}k",
        (memory_mb.max(1) * 1024 * 85 + 50) / 100
    )
}

/// The JVM command line after `java`, as AWS's managed Java runtime has it:
/// a heap of 85% of the function's memory, the serial collector, class data
/// sharing, C1 only (fast starts; `JAVA_TOOL_OPTIONS` can change it), and
/// the RIC's main class with the handler as its argument.
pub fn jvm_args(jni: bool, memory_mb: Option<i64>, handler: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(mb) = memory_mb {
        args.push(max_heap_arg(mb));
    }
    args.extend(
        [
            "-XX:+UseSerialGC",
            "-Xshare:auto",
            "-XX:+TieredCompilation",
            "-XX:TieredStopAtLevel=1",
            "--add-opens=java.base/java.io=ALL-UNNAMED",
            "-Dorg.crac.Core.Compat=com.amazonaws.services.lambda.crac",
            "-XX:+ErrorFileToStderr",
            "-Djava.net.preferIPv4Stack=true",
        ]
        .map(String::from),
    );
    if jni {
        args.push(format!(
            "-D{JNI_PROPERTY}={RUNTIME_DIR}/lib/jni/{JNI_LIBRARY}"
        ));
    }
    args.push("-classpath".into());
    args.push(format!("{RUNTIME_DIR}/lib/*"));
    args.push(MAIN_CLASS.into());
    if let Some(handler) = handler {
        args.push(handler.to_string());
    }
    args
}

/// What an instance of a Java runtime needs bound.
pub fn mounts(jvm: &Jvm, ric: &RicInstall) -> Vec<BindMount> {
    let mut mounts = vec![BindMount::read_only(ric.dir.clone(), RUNTIME_DIR)];
    if let Some(prefix) = &jvm.prefix {
        mounts.push(BindMount::read_only(prefix.clone(), LANG_DIR));
    }
    for etc in &jvm.etc_dirs {
        mounts.push(BindMount::read_only(etc.clone(), etc.clone()));
    }
    mounts
}

/// `java 25.0.3 (Eclipse Adoptium Temurin-25.0.3+9), aws-lambda-java-runtime-interface-client 2.10.1`
pub fn describe(jvm: &Jvm) -> String {
    let mut text = format!("java {}", jvm.version);
    if let Some(implementor) = &jvm.implementor {
        text.push_str(&format!(" ({implementor})"));
    }
    text.push_str(&format!(
        ", {} {}",
        RUNTIME_INTERFACE_CLIENT.artifact, RUNTIME_INTERFACE_CLIENT.version
    ));
    text
}

/// Strato's stem-cell launcher (`runtimes/java/StratoStem.java`): loads
/// the RIC, waits for its assignment, installs the function's environment
/// and runs the RIC's main.
const STEM_SOURCE: &str = include_str!("../../../../runtimes/java/StratoStem.java");
/// Where the compiled launcher is bound inside a Java stem cell.
pub const STEM_CLASSES_DIR: &str = "/var/strato/java-stem";
const STEM_MAIN_CLASS: &str = "StratoStem";

/// Where the JVM's trust store with Strato's sandbox CA is bound.
pub const TRUST_STORE_PATH: &str = "/var/strato/java-cacerts";
/// Its password (a trust store's password only guards its integrity).
pub const TRUST_STORE_PASSWORD: &str = "changeit";

/// Why the JVM's trust store could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("{jdk_home} has no keytool")]
    NoKeytool { jdk_home: PathBuf },
    #[error("trust store ({step}): {source}")]
    Io {
        step: &'static str,
        source: io::Error,
    },
    #[error("keytool failed: {0}")]
    Keytool(String),
}

/// The JDK's own CA certificates plus `ca_pem`, as a JKS store (made by the
/// JDK's `keytool` on first use and kept, named by the JDK and the CA), for
/// `-Djavax.net.ssl.trustStore`: what the JVM trusts is what AWS's image
/// trusts, and Strato's sandbox CA.
pub fn trust_store(
    runtimes_dir: &Path,
    jvm: &Jvm,
    ca_pem: &Path,
) -> Result<PathBuf, TrustStoreError> {
    use sha1::Digest;
    let fail = |step: &'static str| move |source: io::Error| TrustStoreError::Io { step, source };
    let ca = fs::read(ca_pem).map_err(fail("CA certificate"))?;
    let mut hasher = sha1::Sha1::new();
    hasher.update(jvm.home.as_os_str().as_encoded_bytes());
    hasher.update(&ca);
    let hash = hex::encode(&hasher.finalize()[..6]);
    let store = java_root(runtimes_dir).join(format!("cacerts-{hash}.jks"));
    if store.is_file() {
        return Ok(store);
    }
    let keytool = jvm.home.join("bin/keytool");
    if !keytool.is_file() {
        return Err(TrustStoreError::NoKeytool {
            jdk_home: jvm.home.clone(),
        });
    }
    fs::create_dir_all(java_root(runtimes_dir)).map_err(fail("directory"))?;
    let staging = store.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    let keytool_run = |args: &[&std::ffi::OsStr]| -> Result<(), TrustStoreError> {
        let out = std::process::Command::new(&keytool)
            .args(args)
            .output()
            .map_err(fail("keytool"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(TrustStoreError::Keytool(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    };
    let jdk_cacerts = jvm.home.join("lib/security/cacerts");
    let os = std::ffi::OsStr::new;
    let made = keytool_run(&[
        os("-importkeystore"),
        os("-noprompt"),
        os("-srckeystore"),
        jdk_cacerts.as_os_str(),
        os("-srcstorepass"),
        os(TRUST_STORE_PASSWORD),
        os("-destkeystore"),
        staging.as_os_str(),
        os("-deststoretype"),
        os("JKS"),
        os("-deststorepass"),
        os(TRUST_STORE_PASSWORD),
    ])
    .and_then(|()| {
        keytool_run(&[
            os("-importcert"),
            os("-noprompt"),
            os("-alias"),
            os("strato-sandbox-ca"),
            os("-file"),
            ca_pem.as_os_str(),
            os("-keystore"),
            staging.as_os_str(),
            os("-storepass"),
            os(TRUST_STORE_PASSWORD),
        ])
    })
    .and_then(|()| fs::rename(&staging, &store).map_err(fail("rename")));
    if made.is_err() {
        let _ = fs::remove_file(&staging);
    }
    made.map(|()| store)
}

/// Why the Java stem-cell launcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StemLauncherError {
    #[error("{} has no javac to build the stem-cell launcher", .jdk_home.display())]
    NoJavac { jdk_home: PathBuf },
    #[error("building the Java stem-cell launcher: {step}: {source}")]
    Io {
        step: &'static str,
        source: io::Error,
    },
    #[error("building the Java stem-cell launcher: javac: {stderr}")]
    Javac { stderr: String },
}

/// The compiled launcher, built once per launcher source with the JDK's
/// `javac` (for Java 11 class files, which every Java runtime loads) into
/// `<runtimes dir>/java/stem-<hash>`.
pub fn stem_classes(runtimes_dir: &Path, jvm: &Jvm) -> Result<PathBuf, StemLauncherError> {
    use sha1::Digest;
    let hash = hex::encode(&sha1::Sha1::digest(STEM_SOURCE.as_bytes())[..6]);
    let dir = java_root(runtimes_dir).join(format!("stem-{hash}"));
    if dir.join(format!("{STEM_MAIN_CLASS}.class")).is_file() {
        return Ok(dir);
    }
    let javac = jvm.home.join("bin/javac");
    if !javac.is_file() {
        return Err(StemLauncherError::NoJavac {
            jdk_home: jvm.home.clone(),
        });
    }
    let staging = java_root(runtimes_dir).join(format!(".stem-{}", uuid::Uuid::new_v4().simple()));
    let source_dir = staging.join("src");
    let classes = staging.join("classes");
    let fail = |step: &'static str| move |source: io::Error| StemLauncherError::Io { step, source };
    fs::create_dir_all(&source_dir).map_err(fail("staging directory"))?;
    let source = source_dir.join(format!("{STEM_MAIN_CLASS}.java"));
    fs::write(&source, STEM_SOURCE).map_err(fail("source"))?;
    let out = std::process::Command::new(&javac)
        .args(["--release", "11", "-nowarn", "-d"])
        .arg(&classes)
        .arg(&source)
        .output()
        .map_err(fail("javac"))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&staging);
        return Err(StemLauncherError::Javac {
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    for entry in fs::read_dir(&classes).map_err(fail("classes"))?.flatten() {
        let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644));
    }
    let _ = fs::set_permissions(&classes, fs::Permissions::from_mode(0o755));
    // Another server may have built it meanwhile: either copy will do.
    match fs::rename(&classes, &dir) {
        Ok(()) => {}
        Err(_) if dir.join(format!("{STEM_MAIN_CLASS}.class")).is_file() => {}
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(fail("install")(e));
        }
    }
    let _ = fs::remove_dir_all(&staging);
    Ok(dir)
}

/// The JVM command line of a stem cell for functions of `memory_mb`: the
/// function's own flags, the launcher as the main class, and the two
/// `--add-opens` it needs to install the environment.
pub fn stem_jvm_args(jni: bool, memory_mb: i64) -> Vec<String> {
    let mut args = jvm_args(jni, Some(memory_mb), None);
    // `-classpath <ric>/lib/* <main class>` end the function's command line.
    args.truncate(args.len().saturating_sub(3));
    args.extend([
        "--add-opens=java.base/java.lang=ALL-UNNAMED".to_string(),
        "--add-opens=java.base/java.util=ALL-UNNAMED".to_string(),
        "-classpath".to_string(),
        format!("{RUNTIME_DIR}/lib/*:{STEM_CLASSES_DIR}"),
        STEM_MAIN_CLASS.to_string(),
    ]);
    args
}

pub fn launch_plan_parts(jvm: &Jvm, ric: &RicInstall) -> (Vec<String>, Vec<BindMount>) {
    (
        jvm_args(ric.has_jni_library(), None, None),
        mounts(jvm, ric),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Fetch(#[from] MavenError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{jar} has no {entry}: {source}")]
    Jar {
        jar: String,
        entry: String,
        source: JarEntryError,
    },
}

/// How an installation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    Already(PathBuf),
    Now(PathBuf),
}

/// Serialises installs within this process; separate processes are kept
/// apart by the atomic rename at the end.
static INSTALL_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Installs the runtime interface client into `runtimes_dir` unless it is
/// there: each jar fetched and checked against its published SHA-1, the JNI
/// library unpacked, then the whole directory moved into place at once.
pub async fn install(
    runtimes_dir: &Path,
    fetcher: &Fetcher,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Installed, InstallError> {
    let _guard = INSTALL_LOCK.lock().await;
    let ric = RicInstall::new(runtimes_dir);
    if ric.is_installed() {
        return Ok(Installed::Already(ric.dir));
    }
    let root = java_root(runtimes_dir);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError::Write { path, source }
    };
    let staging = root.join(format!(".install-{}", uuid::Uuid::new_v4().simple()));
    let lib = staging.join("lib");
    let jni_dir = lib.join("jni");
    fs::create_dir_all(&jni_dir).map_err(write_err(&jni_dir))?;
    let result = async {
        for artifact in &ARTIFACTS {
            let bytes = fetcher.fetch(artifact, progress).await?;
            let path = lib.join(artifact.file_name());
            fs::write(&path, &bytes).map_err(write_err(&path))?;
            if *artifact == RUNTIME_INTERFACE_CLIENT {
                let so = jar_entry(&bytes, &format!("jni/{JNI_LIBRARY}")).map_err(|source| {
                    InstallError::Jar {
                        jar: artifact.file_name(),
                        entry: format!("jni/{JNI_LIBRARY}"),
                        source,
                    }
                })?;
                let so_path = jni_dir.join(JNI_LIBRARY);
                fs::write(&so_path, so).map_err(write_err(&so_path))?;
            }
        }
        let coordinates: Vec<String> = ARTIFACTS.iter().map(Artifact::coordinates).collect();
        let marker = staging.join(MARKER);
        fs::write(&marker, coordinates.join("\n") + "\n").map_err(write_err(&marker))?;
        make_readable(&staging).map_err(write_err(&staging))?;
        for dir in [runtimes_dir.to_path_buf(), root.clone()] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                .map_err(write_err(&dir))?;
        }
        match fs::rename(&staging, &ric.dir) {
            Ok(()) => Ok(()),
            // Another process finished first.
            Err(_) if ric.is_installed() => Ok(()),
            Err(e) => Err(write_err(&ric.dir)(e)),
        }
    }
    .await;
    if staging.exists() {
        let _ = fs::remove_dir_all(&staging);
    }
    result.map(|()| Installed::Now(ric.dir))
}

/// One file of a jar.
fn jar_entry(jar: &[u8], name: &str) -> Result<Vec<u8>, JarEntryError> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(jar))?;
    let mut file = archive.by_name(name)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(JarEntryError::Read)?;
    Ok(bytes)
}

/// Why one file of a jar could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JarEntryError {
    #[error(transparent)]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Read(io::Error),
}

/// The sandboxed user reads the runtime: directories 0755, files 0644.
fn make_readable(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_readable(&entry.path())?;
        } else {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_jdk(root: &Path, name: &str, release: &str) -> PathBuf {
        let home = root.join(name);
        fs::create_dir_all(home.join("bin")).unwrap();
        fs::write(home.join("bin/java"), "").unwrap();
        fs::write(home.join("release"), release).unwrap();
        home
    }

    #[test]
    fn java_versions_parse_old_and_new_schemes() {
        assert_eq!(major_of("17.0.15"), Some(17));
        assert_eq!(major_of("25"), Some(25));
        assert_eq!(major_of("1.8.0_402"), Some(8));
        assert_eq!(major_of("x"), None);
    }

    #[test]
    fn jdks_are_found_once_with_their_release_facts() {
        let dir = tempfile::tempdir().unwrap();
        fake_jdk(
            dir.path(),
            "temurin-25",
            "IMPLEMENTOR=\"Eclipse Adoptium\"\nIMPLEMENTOR_VERSION=\"Temurin-25.0.3+9\"\nJAVA_VERSION=\"25.0.3\"\n",
        );
        fake_jdk(dir.path(), "openjdk-17", "JAVA_VERSION=\"17.0.15\"\n");
        std::os::unix::fs::symlink(dir.path().join("openjdk-17"), dir.path().join("alias-17"))
            .unwrap();
        fs::create_dir_all(dir.path().join("not-a-jdk")).unwrap();
        let jvms = find_jvms(&[dir.path()]);
        assert_eq!(jvms.len(), 2, "{jvms:?}");
        let temurin = jvms.iter().find(|j| j.major == 25).unwrap();
        assert_eq!(temurin.version, "25.0.3");
        assert_eq!(
            temurin.implementor.as_deref(),
            Some("Eclipse Adoptium Temurin-25.0.3+9")
        );
        // Outside /usr: bound at /var/lang.
        assert_eq!(temurin.program, PathBuf::from("/var/lang/bin/java"));
        assert!(temurin.prefix.is_some());
    }

    #[test]
    fn each_runtime_gets_its_version_or_the_nearest_newer() {
        let jvm = |major: u32| Jvm {
            home: PathBuf::from(format!("/usr/lib/jvm/{major}")),
            program: PathBuf::from(format!("/usr/lib/jvm/{major}/bin/java")),
            prefix: None,
            etc_dirs: Vec::new(),
            version: format!("{major}.0.1"),
            major,
            implementor: None,
        };
        let jvms = vec![jvm(25), jvm(17)];
        assert_eq!(jvm_for(&jvms, Runtime::Java11).map(|j| j.major), Some(17));
        assert_eq!(jvm_for(&jvms, Runtime::Java17).map(|j| j.major), Some(17));
        assert_eq!(jvm_for(&jvms, Runtime::Java21).map(|j| j.major), Some(25));
        assert!(jvm_for(&[jvm(17)], Runtime::Java21).is_none());
    }

    #[test]
    fn the_command_line_sizes_the_heap_and_names_the_handler() {
        let args = jvm_args(true, Some(512), Some("example.Hello::handleRequest"));
        // 85% of 512 MB, as AWS passes it.
        assert_eq!(args[0], "-XX:MaxHeapSize=445645k");
        assert!(args.contains(&"-XX:+UseSerialGC".to_string()));
        assert!(args.contains(&"-XX:TieredStopAtLevel=1".to_string()));
        assert!(args
            .iter()
            .any(|a| a.starts_with(&format!("-D{JNI_PROPERTY}=/var/runtime/lib/jni/"))));
        let n = args.len();
        assert_eq!(
            args[n - 4..],
            [
                "-classpath",
                "/var/runtime/lib/*",
                MAIN_CLASS,
                "example.Hello::handleRequest"
            ]
        );
    }

    #[test]
    fn etc_directories_the_sandbox_binds_anyway_are_not_bound_twice() {
        let dir = tempfile::tempdir().unwrap();
        let home = fake_jdk(dir.path(), "jdk", "JAVA_VERSION=\"17.0.15\"\n");
        fs::create_dir_all(home.join("lib")).unwrap();
        // /etc/ssl exists on any host this test runs on, and is bound anyway.
        std::os::unix::fs::symlink("/etc/ssl/certs/java/cacerts", home.join("lib/cacerts"))
            .unwrap();
        let jvm = inspect_jvm(&home).unwrap();
        assert!(jvm.etc_dirs.is_empty(), "{:?}", jvm.etc_dirs);
    }

    /// A jar (a zip) holding the given entries.
    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut buf = io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        buf.into_inner()
    }

    fn fake_artifact(artifact: &Artifact) -> Vec<u8> {
        if *artifact == RUNTIME_INTERFACE_CLIENT {
            jar(&[(&format!("jni/{JNI_LIBRARY}"), b"ELF")])
        } else {
            jar(&[("META-INF/MANIFEST.MF", artifact.artifact.as_bytes())])
        }
    }

    /// A Maven repository on loopback serving every artifact, with the
    /// checksum `sum` gives for each.
    async fn serve_repository(sum: fn(&[u8]) -> String) -> String {
        use axum::extract::Path as UrlPath;
        let app = axum::Router::new().route(
            "/m2/{*path}",
            axum::routing::get(move |UrlPath(path): UrlPath<String>| async move {
                let (file, checksum) = match path.strip_suffix(".sha1") {
                    Some(file) => (file.to_string(), true),
                    None => (path.clone(), false),
                };
                match ARTIFACTS.iter().find(|a| a.repository_path() == file) {
                    Some(a) if checksum => Ok(sum(&fake_artifact(a)).into_bytes()),
                    Some(a) => Ok(fake_artifact(a)),
                    None => Err(axum::http::StatusCode::NOT_FOUND),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/m2")
    }

    fn fetcher_for(remote: String) -> Fetcher {
        Fetcher::new(super::super::maven::MavenSource {
            remote,
            mirror_id: None,
            local_repository: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn install_verifies_every_jar_and_unpacks_the_jni_library() {
        let remote = serve_repository(super::super::maven::sha1_hex).await;
        let data = tempfile::tempdir().unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |p: Progress| {
            if let Progress::Downloaded { artifact, .. } = p {
                seen.lock().unwrap().push(artifact);
            }
        };
        let outcome = install(data.path(), &fetcher_for(remote.clone()), &progress)
            .await
            .unwrap();
        let ric = RicInstall::new(data.path());
        assert_eq!(outcome, Installed::Now(ric.dir.clone()));
        assert!(ric.is_installed());
        assert_eq!(seen.lock().unwrap().len(), ARTIFACTS.len());
        for artifact in &ARTIFACTS {
            assert!(ric.jar(artifact).is_file(), "{}", artifact.file_name());
        }
        assert!(ric.has_jni_library());
        let mode = fs::metadata(ric.jar(&LAMBDA_JAVA_CORE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "readable by the sandbox user");
        // Installed once; a second install does nothing.
        let again = install(data.path(), &fetcher_for(remote), &|_| {})
            .await
            .unwrap();
        assert_eq!(again, Installed::Already(ric.dir));
    }

    #[tokio::test]
    async fn a_jar_that_does_not_match_its_checksum_installs_nothing() {
        let remote = serve_repository(|_| "0".repeat(40)).await;
        let data = tempfile::tempdir().unwrap();
        let err = install(data.path(), &fetcher_for(remote), &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                InstallError::Fetch(MavenError::ChecksumMismatch { .. })
            ),
            "{err}"
        );
        assert!(!RicInstall::new(data.path()).is_installed());
        let leftovers: Vec<_> = fs::read_dir(java_root(data.path())).unwrap().collect();
        assert!(leftovers.is_empty(), "the staging directory is removed");
    }

    #[tokio::test]
    async fn an_unreachable_repository_is_named_in_the_error() {
        let data = tempfile::tempdir().unwrap();
        // Nothing listens on the discard port of loopback.
        let err = install(
            data.path(),
            &fetcher_for("http://127.0.0.1:9/m2".into()),
            &|_| {},
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot reach http://127.0.0.1:9/m2/"),
            "{err}"
        );
    }

    #[test]
    fn an_installation_counts_only_once_complete() {
        let dir = tempfile::tempdir().unwrap();
        let ric = RicInstall::new(dir.path());
        assert!(!ric.is_installed());
        fs::create_dir_all(ric.dir.join("lib")).unwrap();
        assert!(!ric.is_installed());
        fs::write(ric.dir.join(MARKER), "").unwrap();
        assert!(ric.is_installed());
        assert!(ric
            .jar(&LAMBDA_JAVA_CORE)
            .ends_with("lib/aws-lambda-java-core-1.4.0.jar"));
    }
}
