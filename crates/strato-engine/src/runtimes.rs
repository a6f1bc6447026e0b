//! Runtime management: which interpreter runs each runtime identifier, and
//! how an instance of it is launched.
//!
//! The platform, not the user, provides runtimes: Strato finds interpreters
//! on the host (or in its data directory, where `strato runtimes install`
//! puts them) and reports which one ran. A runtime that cannot be provided is
//! refused when a function is created, not at its first invocation.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use strato_model::{Runtime, RuntimeFamily};
use strato_sandbox::BindMount;

pub mod java;
pub mod maven;
pub mod site_packages;

/// Strato's own runtime bootstraps, embedded so one binary carries them.
const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/nodejs/bootstrap.mjs");
const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");

/// Where things are inside an instance (as on AWS).
pub const TASK_ROOT: &str = "/var/task";
pub const RUNTIME_DIR: &str = "/var/runtime";
pub const LANG_DIR: &str = "/var/lang";
pub const OPT_DIR: &str = "/opt";

/// How to start one instance of a runtime.
#[derive(Debug, Clone)]
pub struct LaunchPlan {
    /// The program, as a path inside the instance.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Runtime-specific environment (search paths, `AWS_EXECUTION_ENV`).
    pub env: Vec<(String, String)>,
    /// Read-only binds the runtime needs besides the code.
    pub mounts: Vec<BindMount>,
    /// What ran, e.g. `node v20.20.2`, for the logs and the API.
    pub version: String,
}

/// Strato's sandbox CA in every runtime's trust store, as AWS's CA bundle
/// is: functions reach Strato by AWS's host names over HTTPS.
#[derive(Debug, Clone)]
pub struct SandboxTrust {
    /// A host file: the host's system bundle followed by Strato's CA.
    pub bundle: PathBuf,
    /// Where instances see it: the host's system bundle path, so every
    /// client reading the system bundle trusts the CA.
    pub bundle_path: PathBuf,
    /// Strato's CA certificate (PEM), for the JVM's trust store.
    pub ca_pem: PathBuf,
}

/// Node.js reads OpenSSL's store (the system bundle, or `SSL_CERT_FILE`)
/// instead of its compiled-in roots: unlike `NODE_EXTRA_CA_CERTS`, which is
/// parsed at every start, the store is only read when the first TLS
/// connection is made.
const NODE_OPENSSL_CA: &str = "--use-openssl-ca";

/// Why a runtime cannot run on this host (yet).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeUnavailable {
    #[error("no Node.js {major} or newer is installed on this host")]
    NoNode { major: u32 },
    #[error("no Python 3.{minor} is installed on this host")]
    NoPython { minor: u32 },
    #[error(
        "no JDK {major} or newer is installed on this host (looked in {})",
        java::JVM_ROOTS.join(", ")
    )]
    NoJdk { major: u32 },
    #[error("{} is not available on this Strato host", .runtime.as_str())]
    NotOnThisHost { runtime: Runtime },
    /// The JVM is there; the client is fetched on first use
    /// ([`java::install`]).
    #[error(
        "{} found, but AWS's Java runtime interface client {} is not installed yet in {}: it is fetched from Maven on first use, or ahead of time by `strato runtimes install {}`",
        .jvm_home.display(),
        java::RUNTIME_INTERFACE_CLIENT.version,
        .client_dir.display(),
        .runtime.as_str()
    )]
    JavaClientMissing {
        jvm_home: PathBuf,
        client_dir: PathBuf,
        runtime: Runtime,
    },
    /// Java stem cells run Strato's launcher, compiled on first use.
    #[error(transparent)]
    StemLauncher(#[from] java::StemLauncherError),
}

/// An interpreter found on the host.
#[derive(Debug, Clone)]
struct Interpreter {
    /// Host directory bound at /var/lang, when the interpreter lives outside /usr.
    prefix: Option<PathBuf>,
    /// The program as seen inside the instance.
    program: PathBuf,
    version: String,
    major: u32,
    minor: u32,
}

#[derive(Debug)]
pub struct RuntimeCatalog {
    runtimes_dir: PathBuf,
    bootstrap_dir: PathBuf,
    node: Vec<Interpreter>,
    python: Vec<Interpreter>,
    /// Per Python minor version, the `site-packages` its functions see
    /// ([`site_packages`]): what AWS's image for it carries.
    python_site_packages: BTreeMap<u32, PathBuf>,
    jvms: Vec<java::Jvm>,
    /// Where the Java runtime interface client is (or will be) installed.
    java_ric: java::RicInstall,
    /// Set when instances reach Strato by AWS's host names.
    trust: std::sync::OnceLock<SandboxTrust>,
}

/// An empty directory bound over host paths an instance must not see.
const EMPTY_DIR: &str = "empty";

const PATH: &str = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin";
const LD_LIBRARY_PATH: &str = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib";

/// What every AWS runtime carries for the X-Ray SDKs: a missing trace
/// context is logged, not raised, and where the X-Ray daemon listens (on AWS a
/// link-local address; Strato runs no daemon, so nothing is sent anywhere).
const XRAY_ENV: [(&str, &str); 4] = [
    ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"),
    ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
    ("_AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129"),
    ("_AWS_XRAY_DAEMON_PORT", "2000"),
];

fn version_of(program: &Path, flag: &str) -> Option<String> {
    let out = Command::new(program).arg(flag).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let text = String::from_utf8_lossy(&text).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// `v20.20.2` or `Python 3.11.7` → (20, 20) / (3, 11)
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let digits = version.trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut parts = digits.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((major, minor))
}

fn find_node() -> Vec<Interpreter> {
    let mut found = Vec::new();
    for candidate in ["/usr/bin/node", "/usr/local/bin/node"] {
        let path = Path::new(candidate);
        if !path.is_file() {
            continue;
        }
        if let Some(version) = version_of(path, "--version") {
            if let Some((major, minor)) = major_minor(&version) {
                found.push(Interpreter {
                    prefix: None,
                    program: path.to_path_buf(),
                    version: format!("node {version}"),
                    major,
                    minor,
                });
            }
        }
    }
    found
}

/// A Node.js release installed by `strato runtimes install` (or on first
/// use) under `<runtimes_dir>/node/<major>`, bound at /var/lang.
fn installed_node(runtimes_dir: &Path, major: u32) -> Option<Interpreter> {
    let dir = crate::install::node_dir(runtimes_dir, major);
    let version = fs::read_to_string(dir.join(crate::install::NODE_VERSION_FILE)).ok()?;
    let version = version.trim().to_string();
    let (found_major, minor) = major_minor(&version)?;
    (found_major == major).then(|| Interpreter {
        prefix: Some(dir),
        program: PathBuf::from(LANG_DIR).join("bin").join("node"),
        version: format!("node {version}"),
        major,
        minor,
    })
}

fn find_python() -> Vec<Interpreter> {
    let mut found = Vec::new();
    // pyenv builds (outside /usr): bound whole at /var/lang, as AWS lays it out.
    let pyenv = Path::new("/root/.pyenv/versions");
    if let Ok(entries) = fs::read_dir(pyenv) {
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            let Some((major, minor)) = major_minor(&name) else {
                continue;
            };
            let exe = dir.join("bin").join(format!("python{major}.{minor}"));
            if major == 3 && exe.is_file() {
                found.push(Interpreter {
                    prefix: Some(dir.clone()),
                    program: PathBuf::from(LANG_DIR)
                        .join("bin")
                        .join(format!("python{major}.{minor}")),
                    version: format!("Python {name}"),
                    major,
                    minor,
                });
            }
        }
    }
    for minor in 9..=14 {
        for base in ["/usr/local/bin", "/usr/bin"] {
            let exe = Path::new(base).join(format!("python3.{minor}"));
            if exe.is_file() && !found.iter().any(|i| i.major == 3 && i.minor == minor) {
                if let Some(version) = version_of(&exe, "--version") {
                    found.push(Interpreter {
                        prefix: None,
                        program: exe,
                        version,
                        major: 3,
                        minor,
                    });
                }
            }
        }
    }
    found
}

/// The `site-packages` of each Python runtime whose interpreter Strato binds
/// at /var/lang (see [`site_packages`]); one that cannot be made is left out
/// (its functions then see an empty one) and the reason logged.
fn runtime_site_packages(runtimes_dir: &Path, python: &[Interpreter]) -> BTreeMap<u32, PathBuf> {
    let mut found = BTreeMap::new();
    for interpreter in python {
        let Some(prefix) = &interpreter.prefix else {
            continue;
        };
        let wheels = site_packages::bundled_wheels(prefix, interpreter.minor);
        match site_packages::provide(runtimes_dir, interpreter.minor, &wheels) {
            Ok(dir) => {
                found.insert(interpreter.minor, dir);
            }
            Err(err) => tracing::warn!(
                python = %interpreter.version,
                "functions see an empty site-packages: {err}"
            ),
        }
    }
    found
}

pub fn node_major(runtime: Runtime) -> u32 {
    match runtime {
        Runtime::Nodejs18 => 18,
        Runtime::Nodejs20 => 20,
        Runtime::Nodejs24 => 24,
        _ => 22,
    }
}

fn python_minor(runtime: Runtime) -> u32 {
    match runtime {
        Runtime::Python39 => 9,
        Runtime::Python310 => 10,
        Runtime::Python311 => 11,
        Runtime::Python312 => 12,
        Runtime::Python314 => 14,
        _ => 13,
    }
}

impl RuntimeCatalog {
    /// Writes the embedded bootstraps under `<runtimes_dir>/bootstrap` and
    /// finds the interpreters this host has (and those installed in
    /// `runtimes_dir`).
    pub fn discover(runtimes_dir: &Path) -> io::Result<RuntimeCatalog> {
        let bootstrap_dir = runtimes_dir.join("bootstrap");
        fs::create_dir_all(&bootstrap_dir)?;
        for (name, text) in [
            ("bootstrap.mjs", NODE_BOOTSTRAP),
            ("bootstrap.py", PYTHON_BOOTSTRAP),
        ] {
            let path = bootstrap_dir.join(name);
            if fs::read_to_string(&path).ok().as_deref() != Some(text) {
                // Atomic: other servers sharing the directory (in this
                // process too) may be starting runtimes from it right now,
                // or writing it themselves: each stages under its own name.
                let staged =
                    bootstrap_dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
                fs::write(&staged, text)?;
                fs::set_permissions(&staged, fs::Permissions::from_mode(0o644))?;
                fs::rename(&staged, &path)?;
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        }
        for dir in [runtimes_dir.to_path_buf(), bootstrap_dir.clone()] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        }
        // The mount point under which the AWS SDK for JavaScript appears,
        // once installed (see `install::install_sdks`).
        fs::create_dir_all(bootstrap_dir.join("node_modules"))?;
        let empty = runtimes_dir.join(EMPTY_DIR);
        fs::create_dir_all(&empty)?;
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o755))?;
        let python = find_python();
        let python_site_packages = runtime_site_packages(runtimes_dir, &python);
        Ok(RuntimeCatalog {
            runtimes_dir: runtimes_dir.to_path_buf(),
            bootstrap_dir,
            node: find_node(),
            python,
            python_site_packages,
            jvms: java::find_jvms(&java::JVM_ROOTS.map(Path::new)),
            java_ric: java::RicInstall::new(runtimes_dir),
            trust: std::sync::OnceLock::new(),
        })
    }

    /// The Node interpreter for a runtime: the same major, or (the platform
    /// patching forward) the nearest newer one.
    fn node_for(&self, runtime: Runtime) -> Option<Interpreter> {
        let want = node_major(runtime);
        if let Some(installed) = installed_node(&self.runtimes_dir, want) {
            return Some(installed);
        }
        self.node
            .iter()
            .filter(|i| i.major >= want)
            .min_by_key(|i| (i.major, std::cmp::Reverse(i.minor)))
            .cloned()
    }

    /// Whether installing a Node.js release ([`install::install_node`]) is
    /// all `runtime` lacks.
    pub fn needs_node_install(&self, runtime: Runtime) -> bool {
        runtime.family() == RuntimeFamily::Node && self.node_for(runtime).is_none()
    }

    /// The runtime directory instances see at `/var/runtime`.
    pub fn bootstrap_dir(&self) -> &Path {
        &self.bootstrap_dir
    }

    pub fn runtimes_dir(&self) -> &Path {
        &self.runtimes_dir
    }

    fn python_for(&self, runtime: Runtime) -> Option<&Interpreter> {
        let want = python_minor(runtime);
        self.python.iter().find(|i| i.major == 3 && i.minor == want)
    }

    /// Why `runtime` cannot run here: no interpreter for it.
    fn unavailable(runtime: Runtime) -> RuntimeUnavailable {
        match runtime.family() {
            RuntimeFamily::Node => RuntimeUnavailable::NoNode {
                major: node_major(runtime),
            },
            RuntimeFamily::Python => RuntimeUnavailable::NoPython {
                minor: python_minor(runtime),
            },
            RuntimeFamily::Java => RuntimeUnavailable::NoJdk {
                major: java::wanted_major(runtime),
            },
            RuntimeFamily::OsOnly => RuntimeUnavailable::NotOnThisHost { runtime },
        }
    }

    /// Whether installing the Java runtime interface client
    /// ([`java::install`]) is all `runtime` lacks.
    pub fn needs_java_install(&self, runtime: Runtime) -> bool {
        runtime.family() == RuntimeFamily::Java
            && java::jvm_for(&self.jvms, runtime).is_some()
            && !self.java_ric.is_installed()
    }

    /// What a Java stem cell for functions of `memory_mb` runs: the
    /// runtime's JVM with Strato's launcher (built on first use) in place of
    /// the RIC's main class. Blocks while the launcher is built.
    pub fn java_stem_plan(
        &self,
        runtime: Runtime,
        memory_mb: i64,
    ) -> Result<LaunchPlan, RuntimeUnavailable> {
        let mut plan = self.untrusted_plan(runtime)?;
        let jvm = java::jvm_for(&self.jvms, runtime).ok_or_else(|| Self::unavailable(runtime))?;
        let classes = java::stem_classes(&self.runtimes_dir, jvm)?;
        plan.args = java::stem_jvm_args(self.java_ric.has_jni_library(), memory_mb);
        plan.mounts
            .push(BindMount::read_only(classes, java::STEM_CLASSES_DIR));
        Ok(self.with_trust(runtime, plan))
    }

    /// An empty directory, the placeholder a stem cell's `/var/task` and
    /// `/opt` are mounted on until it is assigned.
    pub fn empty_dir(&self) -> PathBuf {
        self.runtimes_dir.join(EMPTY_DIR)
    }

    /// The launch plan for one function: the runtime's plan plus what
    /// depends on the function (the JVM's heap follows its memory size and
    /// the runtime interface client takes the handler as an argument).
    pub fn plan_for(
        &self,
        runtime: Runtime,
        handler: Option<&str>,
        memory_mb: i64,
    ) -> Result<LaunchPlan, RuntimeUnavailable> {
        let mut plan = self.plan(runtime)?;
        if runtime.family() == RuntimeFamily::Java {
            plan.args.insert(0, java::max_heap_arg(memory_mb));
            plan.args.push(handler.unwrap_or_default().to_string());
        }
        Ok(plan)
    }

    /// What runs `runtime` on this host; the error says why nothing can.
    pub fn check(&self, runtime: Runtime) -> Result<String, RuntimeUnavailable> {
        self.plan(runtime).map(|plan| plan.version)
    }

    /// The build of `runtime` this host runs, as the hash a
    /// `RuntimeVersionArn` carries: the SHA-256 of the runtime identifier,
    /// what runs it (the interpreter's or JVM's version) and Strato's
    /// bootstrap for its family, so patching either makes a new build.
    pub fn build_hash(&self, runtime: Runtime) -> Result<String, RuntimeUnavailable> {
        use sha2::{Digest, Sha256};
        let plan = self.plan(runtime)?;
        let bootstrap = match runtime.family() {
            RuntimeFamily::Node => NODE_BOOTSTRAP,
            RuntimeFamily::Python => PYTHON_BOOTSTRAP,
            RuntimeFamily::Java => java::RUNTIME_INTERFACE_CLIENT.version,
            RuntimeFamily::OsOnly => "",
        };
        let mut hasher = Sha256::new();
        for part in [runtime.as_str(), plan.version.as_str(), bootstrap] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Every runtime with what runs it, or why it cannot run.
    pub fn report(&self) -> BTreeMap<&'static str, Result<String, RuntimeUnavailable>> {
        Runtime::ALL
            .iter()
            .map(|r| (r.as_str(), self.check(*r)))
            .collect()
    }

    /// Puts Strato's sandbox CA in the trust store of every runtime launched
    /// from now on. Set once.
    pub fn set_trust(&self, trust: SandboxTrust) {
        let _ = self.trust.set(trust);
    }

    pub fn plan(&self, runtime: Runtime) -> Result<LaunchPlan, RuntimeUnavailable> {
        self.untrusted_plan(runtime)
            .map(|plan| self.with_trust(runtime, plan))
    }

    /// `plan` with Strato's CA trusted, when set: the merged bundle over the
    /// system bundle, the variables the TLS stacks read a bundle from, Node's
    /// OpenSSL store, the JVM's trust store.
    fn with_trust(&self, runtime: Runtime, mut plan: LaunchPlan) -> LaunchPlan {
        let Some(trust) = self.trust.get() else {
            return plan;
        };
        plan.mounts.push(BindMount::read_only(
            trust.bundle.clone(),
            trust.bundle_path.clone(),
        ));
        let bundle = trust.bundle_path.display().to_string();
        // OpenSSL (Node, Python's ssl, curl), Go's crypto/x509, botocore and
        // the AWS SDKs for Go, requests.
        for key in ["SSL_CERT_FILE", "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"] {
            plan.env.push((key.to_string(), bundle.clone()));
        }
        match runtime.family() {
            RuntimeFamily::Node => plan.args.insert(0, NODE_OPENSSL_CA.to_string()),
            RuntimeFamily::Java => {
                let store = java::jvm_for(&self.jvms, runtime)
                    .map(|jvm| java::trust_store(&self.runtimes_dir, jvm, &trust.ca_pem));
                match store {
                    Some(Ok(store)) => {
                        plan.mounts
                            .push(BindMount::read_only(store, java::TRUST_STORE_PATH));
                        plan.args.splice(
                            0..0,
                            [
                                format!("-Djavax.net.ssl.trustStore={}", java::TRUST_STORE_PATH),
                                format!(
                                    "-Djavax.net.ssl.trustStorePassword={}",
                                    java::TRUST_STORE_PASSWORD
                                ),
                            ],
                        );
                    }
                    Some(Err(e)) => tracing::warn!(
                        error = %e,
                        "Java functions will not trust Strato's sandbox CA"
                    ),
                    None => {}
                }
            }
            RuntimeFamily::Python | RuntimeFamily::OsOnly => {}
        }
        plan
    }

    fn untrusted_plan(&self, runtime: Runtime) -> Result<LaunchPlan, RuntimeUnavailable> {
        let bootstrap_mount = BindMount::read_only(self.bootstrap_dir.clone(), RUNTIME_DIR);
        let base_env = |extra: Vec<(String, String)>| {
            let mut env: Vec<(String, String)> = [
                ("PATH", PATH),
                ("LD_LIBRARY_PATH", LD_LIBRARY_PATH),
                ("LANG", "en_US.UTF-8"),
            ]
            .into_iter()
            .chain(XRAY_ENV)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            // AWS names the managed runtime here; OS-only runtimes (the
            // `provided` family) have no AWS_EXECUTION_ENV.
            if !matches!(
                runtime,
                Runtime::Provided | Runtime::ProvidedAl2 | Runtime::ProvidedAl2023
            ) {
                env.push((
                    "AWS_EXECUTION_ENV".to_string(),
                    format!("AWS_Lambda_{}", runtime.as_str()),
                ));
            }
            env.extend(extra);
            env
        };
        match runtime.family() {
            RuntimeFamily::Node => {
                let node = self
                    .node_for(runtime)
                    .ok_or_else(|| Self::unavailable(runtime))?;
                let major = node.major;
                Ok(LaunchPlan {
                    program: node.program.clone(),
                    args: vec!["--max-http-header-size=81920".into(), format!("{RUNTIME_DIR}/bootstrap.mjs")],
                    env: base_env(vec![(
                        "NODE_PATH".into(),
                        format!("/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task"),
                    )]),
                    mounts: mounts_for(&node, bootstrap_mount),
                    version: node.version.clone(),
                })
            }
            RuntimeFamily::Python => {
                let python = self
                    .python_for(runtime)
                    .ok_or_else(|| Self::unavailable(runtime))?;
                Ok(LaunchPlan {
                    program: python.program.clone(),
                    args: vec!["-u".into(), format!("{RUNTIME_DIR}/bootstrap.py")],
                    env: base_env(vec![
                        ("PYTHONUNBUFFERED".into(), "1".into()),
                        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
                    ]),
                    mounts: {
                        let mut mounts = mounts_for(python, bootstrap_mount);
                        if python.prefix.is_some() {
                            // The host installation's own packages are not the
                            // runtime's: functions see what AWS's image carries
                            // (pip, and setuptools through 3.11), not whatever
                            // the host pip-installed.
                            let site = self
                                .python_site_packages
                                .get(&python.minor)
                                .cloned()
                                .unwrap_or_else(|| self.runtimes_dir.join(EMPTY_DIR));
                            mounts.push(BindMount::read_only(
                                site,
                                format!("{LANG_DIR}/lib/python3.{}/site-packages", python.minor),
                            ));
                        }
                        mounts
                    },
                    version: python.version.clone(),
                })
            }
            RuntimeFamily::Java => {
                let jvm =
                    java::jvm_for(&self.jvms, runtime).ok_or_else(|| Self::unavailable(runtime))?;
                if !self.java_ric.is_installed() {
                    return Err(RuntimeUnavailable::JavaClientMissing {
                        jvm_home: jvm.home.clone(),
                        client_dir: self.java_ric.dir.clone(),
                        runtime,
                    });
                }
                let (args, mounts) = java::launch_plan_parts(jvm, &self.java_ric);
                Ok(LaunchPlan {
                    program: jvm.program.clone(),
                    args,
                    env: base_env(Vec::new()),
                    mounts,
                    version: java::describe(jvm),
                })
            }
            RuntimeFamily::OsOnly => Ok(LaunchPlan {
                program: PathBuf::from(TASK_ROOT).join("bootstrap"),
                args: Vec::new(),
                env: base_env(Vec::new()),
                mounts: Vec::new(),
                version: runtime.as_str().to_string(),
            }),
        }
    }
}

fn mounts_for(interpreter: &Interpreter, bootstrap: BindMount) -> Vec<BindMount> {
    let mut mounts = vec![bootstrap];
    if let Some(prefix) = &interpreter.prefix {
        mounts.push(BindMount::read_only(prefix.clone(), LANG_DIR));
    }
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_tool_output() {
        assert_eq!(major_minor("v20.20.2"), Some((20, 20)));
        assert_eq!(major_minor("Python 3.11.7"), Some((3, 11)));
        assert_eq!(major_minor("3.12.1"), Some((3, 12)));
    }

    #[test]
    fn os_only_runtimes_run_the_bootstrap_of_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = RuntimeCatalog::discover(dir.path()).unwrap();
        let plan = catalog.plan(Runtime::ProvidedAl2023).unwrap();
        assert_eq!(plan.program, PathBuf::from("/var/task/bootstrap"));
        assert!(dir.path().join("bootstrap/bootstrap.mjs").is_file());
    }

    #[test]
    fn os_only_runtimes_have_no_execution_env_and_every_runtime_has_the_xray_settings() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = RuntimeCatalog::discover(dir.path()).unwrap();
        let env_of = |runtime| -> BTreeMap<String, String> {
            catalog.plan(runtime).unwrap().env.into_iter().collect()
        };
        let provided = env_of(Runtime::ProvidedAl2023);
        assert_eq!(provided.get("AWS_EXECUTION_ENV"), None);
        assert_eq!(provided["AWS_XRAY_CONTEXT_MISSING"], "LOG_ERROR");
        assert_eq!(provided["LANG"], "en_US.UTF-8");
        assert_eq!(
            env_of(Runtime::Go1x)["AWS_EXECUTION_ENV"],
            "AWS_Lambda_go1.x"
        );
    }
}
