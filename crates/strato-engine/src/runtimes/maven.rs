//! Fetching pinned artifacts from a Maven repository, found the way Maven
//! finds it.
//!
//! Strato installs a few jars (AWS's Java runtime interface client and what
//! it needs) rather than shipping them. Where they come from follows the
//! machine's Maven configuration: the local repository Maven keeps
//! (`<localRepository>`, default `~/.m2/repository`) is used when it already
//! holds an artifact with its checksum, and otherwise the remote repository,
//! which is Maven Central unless `settings.xml` names a mirror for it. Every
//! jar is checked against the SHA-1 the repository publishes beside it.

use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

/// The id Maven gives its default remote repository; mirrors name it.
pub const CENTRAL_ID: &str = "central";
/// Maven Central, when no mirror is configured.
pub const CENTRAL_URL: &str = "https://repo.maven.apache.org/maven2";

/// A Maven artifact (a jar) by its coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Artifact {
    pub group: &'static str,
    pub artifact: &'static str,
    pub version: &'static str,
}

impl Artifact {
    /// `aws-lambda-java-core-1.4.0.jar`
    pub fn file_name(&self) -> String {
        format!("{}-{}.jar", self.artifact, self.version)
    }

    /// The path inside a repository: `com/amazonaws/aws-lambda-java-core/1.4.0/aws-lambda-java-core-1.4.0.jar`
    pub fn repository_path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.group.replace('.', "/"),
            self.artifact,
            self.version,
            self.file_name()
        )
    }

    /// `group:artifact:version`
    pub fn coordinates(&self) -> String {
        format!("{}:{}:{}", self.group, self.artifact, self.version)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MavenError {
    #[error("cannot read Maven settings {path}: {source}")]
    Settings {
        path: PathBuf,
        source: roxmltree::Error,
    },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not a SHA-1 checksum file")]
    BadChecksumFile { url: String },
    #[error("{file} does not match its published SHA-1: expected {expected}, got {actual}")]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("cannot start an HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// A `<mirror>` from `settings.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub id: String,
    pub url: String,
    pub mirror_of: String,
}

/// What Strato takes from a `settings.xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub local_repository: Option<String>,
    pub mirrors: Vec<Mirror>,
}

/// Reads the parts of a Maven `settings.xml` that decide where artifacts
/// come from. Comments and unknown elements are ignored, as Maven does.
pub fn parse_settings(text: &str) -> Result<Settings, roxmltree::Error> {
    let doc = roxmltree::Document::parse(text)?;
    let root = doc.root_element();
    let child_text = |node: roxmltree::Node, name: &str| -> Option<String> {
        node.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let mut settings = Settings {
        local_repository: child_text(root, "localRepository"),
        mirrors: Vec::new(),
    };
    let mirrors = root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "mirrors");
    for list in mirrors {
        for mirror in list
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "mirror")
        {
            let (Some(url), Some(mirror_of)) =
                (child_text(mirror, "url"), child_text(mirror, "mirrorOf"))
            else {
                continue;
            };
            settings.mirrors.push(Mirror {
                id: child_text(mirror, "id").unwrap_or_else(|| "default".into()),
                url,
                mirror_of,
            });
        }
    }
    Ok(settings)
}

/// Whether a `<mirrorOf>` pattern covers a repository, by Maven's rules:
/// a comma-separated list of ids, `*`, `external:*` (anything not on this
/// machine), and `!id` exclusions, which win.
pub fn mirror_matches(mirror_of: &str, repo_id: &str, repo_url: &str) -> bool {
    let patterns: Vec<&str> = mirror_of.split(',').map(str::trim).collect();
    if patterns
        .iter()
        .any(|p| p.strip_prefix('!') == Some(repo_id))
    {
        return false;
    }
    let external = !(repo_url.starts_with("file:")
        || repo_url.contains("://localhost")
        || repo_url.contains("://127.0.0.1"));
    patterns.iter().any(|p| match *p {
        "*" => true,
        "external:*" => external,
        "external:https:*" => external && repo_url.starts_with("https:"),
        "external:http:*" => external && repo_url.starts_with("http:"),
        id => id == repo_id,
    })
}

/// Picks the mirror Maven would use for `repo_id`: one naming it exactly
/// wins over a wildcard match; otherwise the first that matches.
pub fn mirror_for<'a>(mirrors: &'a [Mirror], repo_id: &str, repo_url: &str) -> Option<&'a Mirror> {
    mirrors
        .iter()
        .find(|m| m.mirror_of.trim() == repo_id)
        .or_else(|| {
            mirrors
                .iter()
                .find(|m| mirror_matches(&m.mirror_of, repo_id, repo_url))
        })
}

/// Expands `${user.home}` and `${env.NAME}` as Maven does in settings.
fn interpolate(value: &str, home: Option<&Path>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = &after[..end];
        let replacement = if key == "user.home" {
            home.map(|h| h.display().to_string())
        } else if let Some(name) = key.strip_prefix("env.") {
            std::env::var(name).ok()
        } else {
            None
        };
        match replacement {
            Some(r) => out.push_str(&r),
            None => out.push_str(&rest[start..start + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Where artifacts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenSource {
    /// The remote repository's base URL, without a trailing slash.
    pub remote: String,
    /// The mirror that replaced Maven Central, if one did.
    pub mirror_id: Option<String>,
    /// Maven's local repository, consulted first.
    pub local_repository: Option<PathBuf>,
}

impl MavenSource {
    /// Maven Central and nothing else.
    pub fn central() -> MavenSource {
        MavenSource {
            remote: CENTRAL_URL.to_string(),
            mirror_id: None,
            local_repository: None,
        }
    }

    /// Combines the user's and the global settings (the user's first, as
    /// Maven merges them) with the home directory's defaults.
    pub fn from_settings(
        user: Option<&Settings>,
        global: Option<&Settings>,
        home: Option<&Path>,
    ) -> MavenSource {
        let layers: Vec<&Settings> = [user, global].into_iter().flatten().collect();
        let mirrors: Vec<Mirror> = layers.iter().flat_map(|s| s.mirrors.clone()).collect();
        let (remote, mirror_id) = match mirror_for(&mirrors, CENTRAL_ID, CENTRAL_URL) {
            Some(m) => (
                interpolate(&m.url, home).trim_end_matches('/').to_string(),
                Some(m.id.clone()),
            ),
            None => (CENTRAL_URL.to_string(), None),
        };
        let local_repository = layers
            .iter()
            .find_map(|s| s.local_repository.as_deref())
            .map(|p| PathBuf::from(interpolate(p, home)))
            .or_else(|| home.map(|h| h.join(".m2").join("repository")));
        MavenSource {
            remote,
            mirror_id,
            local_repository,
        }
    }

    /// The configuration of this machine: `~/.m2/settings.xml`, then the
    /// global settings of a Maven installation (`$MAVEN_HOME/conf`,
    /// `/etc/maven`, `/usr/share/maven/conf`).
    pub fn from_machine() -> Result<MavenSource, MavenError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let read = |path: &Path| -> Result<Option<Settings>, MavenError> {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    parse_settings(&text)
                        .map(Some)
                        .map_err(|source| MavenError::Settings {
                            path: path.to_path_buf(),
                            source,
                        })
                }
                Err(_) => Ok(None),
            }
        };
        let user = match &home {
            Some(h) => read(&h.join(".m2").join("settings.xml"))?,
            None => None,
        };
        let mut global_candidates: Vec<PathBuf> = ["MAVEN_HOME", "M2_HOME"]
            .iter()
            .filter_map(std::env::var_os)
            .map(|h| PathBuf::from(h).join("conf").join("settings.xml"))
            .collect();
        global_candidates.push(PathBuf::from("/etc/maven/settings.xml"));
        global_candidates.push(PathBuf::from("/usr/share/maven/conf/settings.xml"));
        let mut global = None;
        for candidate in global_candidates {
            if let Some(settings) = read(&candidate)? {
                global = Some(settings);
                break;
            }
        }
        Ok(MavenSource::from_settings(
            user.as_ref(),
            global.as_ref(),
            home.as_deref(),
        ))
    }

    pub fn url_of(&self, artifact: &Artifact) -> String {
        format!("{}/{}", self.remote, artifact.repository_path())
    }
}

/// The SHA-1 in a `.sha1` file: its first word, 40 hex digits (some
/// repositories append the file name after it).
pub fn parse_sha1(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?.to_ascii_lowercase();
    (word.len() == 40 && word.bytes().all(|b| b.is_ascii_hexdigit())).then_some(word)
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

/// Checks `bytes` against the published checksum.
pub fn verify_sha1(file: &str, bytes: &[u8], expected: &str) -> Result<(), MavenError> {
    let actual = sha1_hex(bytes);
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(MavenError::ChecksumMismatch {
            file: file.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}

/// How a download is going.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Found in the local repository, checksum verified.
    Local { artifact: Artifact },
    /// Bytes received so far, and the total when the server said.
    Downloading {
        artifact: Artifact,
        received: u64,
        total: Option<u64>,
    },
    /// Downloaded and verified.
    Downloaded { artifact: Artifact, bytes: u64 },
}

/// Fetches artifacts from a [`MavenSource`].
pub struct Fetcher {
    source: MavenSource,
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new(source: MavenSource) -> Result<Fetcher, MavenError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("strato/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(15))
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .map_err(MavenError::Client)?;
        Ok(Fetcher { source, client })
    }

    pub fn source(&self) -> &MavenSource {
        &self.source
    }

    /// The artifact's bytes, verified against its published SHA-1.
    pub async fn fetch(
        &self,
        artifact: &Artifact,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Vec<u8>, MavenError> {
        if let Some(bytes) = self.read_local_repository(artifact) {
            progress(Progress::Local {
                artifact: *artifact,
            });
            return Ok(bytes);
        }
        let url = self.source.url_of(artifact);
        let checksum_url = format!("{url}.sha1");
        let checksum_text =
            String::from_utf8_lossy(&self.get(&checksum_url, None, progress).await?).to_string();
        let expected = parse_sha1(&checksum_text).ok_or_else(|| MavenError::BadChecksumFile {
            url: checksum_url.clone(),
        })?;
        let bytes = self.get(&url, Some(artifact), progress).await?;
        verify_sha1(&url, &bytes, &expected)?;
        progress(Progress::Downloaded {
            artifact: *artifact,
            bytes: bytes.len() as u64,
        });
        Ok(bytes)
    }

    /// The artifact from Maven's local repository, when it is there with a
    /// checksum file it matches.
    fn read_local_repository(&self, artifact: &Artifact) -> Option<Vec<u8>> {
        let repo = self.source.local_repository.as_ref()?;
        let path = repo.join(artifact.repository_path());
        let expected = parse_sha1(&std::fs::read_to_string(path.with_extension("jar.sha1")).ok()?)?;
        let bytes = std::fs::read(&path).ok()?;
        verify_sha1(&path.display().to_string(), &bytes, &expected)
            .ok()
            .map(|()| bytes)
    }

    async fn get(
        &self,
        url: &str,
        artifact: Option<&Artifact>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Vec<u8>, MavenError> {
        let unreachable = |e: reqwest::Error| MavenError::Unreachable {
            url: url.to_string(),
            reason: error_chain(&e),
        };
        let mut response = self.client.get(url).send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(MavenError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let total = response.content_length();
        let mut body = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if let Some(artifact) = artifact {
                progress(Progress::Downloading {
                    artifact: *artifact,
                    received: body.len() as u64,
                    total,
                });
            }
        }
        Ok(body)
    }
}

/// An error with its causes, which is where reqwest says what went wrong
/// (DNS, refused, TLS).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE: Artifact = Artifact {
        group: "com.amazonaws",
        artifact: "aws-lambda-java-core",
        version: "1.4.0",
    };

    #[test]
    fn artifact_paths_follow_the_maven_layout() {
        assert_eq!(
            CORE.repository_path(),
            "com/amazonaws/aws-lambda-java-core/1.4.0/aws-lambda-java-core-1.4.0.jar"
        );
        assert_eq!(
            MavenSource::central().url_of(&CORE),
            "https://repo.maven.apache.org/maven2/com/amazonaws/aws-lambda-java-core/1.4.0/aws-lambda-java-core-1.4.0.jar"
        );
    }

    #[test]
    fn without_settings_central_and_the_home_repository_are_used() {
        let source = MavenSource::from_settings(None, None, Some(Path::new("/home/u")));
        assert_eq!(source.remote, CENTRAL_URL);
        assert_eq!(source.mirror_id, None);
        assert_eq!(
            source.local_repository,
            Some(PathBuf::from("/home/u/.m2/repository"))
        );
    }

    #[test]
    fn a_mirror_of_central_replaces_it_and_commented_ones_do_not() {
        let xml = r#"<?xml version="1.0"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <localRepository>${user.home}/repo</localRepository>
  <mirrors>
    <!-- <mirror><id>old</id><mirrorOf>*</mirrorOf><url>http://old.example/</url></mirror> -->
    <mirror>
      <id>corp</id>
      <mirrorOf>external:*,!snapshots</mirrorOf>
      <url>https://nexus.example/repository/maven-public/</url>
    </mirror>
  </mirrors>
</settings>"#;
        let settings = parse_settings(xml).unwrap();
        assert_eq!(settings.mirrors.len(), 1);
        let source = MavenSource::from_settings(Some(&settings), None, Some(Path::new("/h")));
        assert_eq!(
            source.remote,
            "https://nexus.example/repository/maven-public"
        );
        assert_eq!(source.mirror_id.as_deref(), Some("corp"));
        assert_eq!(source.local_repository, Some(PathBuf::from("/h/repo")));
    }

    #[test]
    fn an_exact_mirror_wins_over_a_wildcard_and_exclusions_win_over_both() {
        let mirror = |id: &str, of: &str| Mirror {
            id: id.into(),
            url: format!("https://{id}.example"),
            mirror_of: of.into(),
        };
        let mirrors = vec![mirror("all", "*"), mirror("exact", "central")];
        assert_eq!(
            mirror_for(&mirrors, CENTRAL_ID, CENTRAL_URL).map(|m| m.id.as_str()),
            Some("exact")
        );
        assert!(!mirror_matches("*,!central", CENTRAL_ID, CENTRAL_URL));
        assert!(mirror_matches("other,central", CENTRAL_ID, CENTRAL_URL));
        assert!(!mirror_matches("external:http:*", CENTRAL_ID, CENTRAL_URL));
        assert!(!mirror_matches("external:*", "local", "file:///repo"));
        let only_excluding = vec![mirror("nope", "*,!central")];
        assert!(mirror_for(&only_excluding, CENTRAL_ID, CENTRAL_URL).is_none());
    }

    #[test]
    fn user_settings_take_precedence_over_global_ones() {
        let user =
            parse_settings("<settings><localRepository>/u/repo</localRepository></settings>")
                .unwrap();
        let global = parse_settings(
            "<settings><localRepository>/g/repo</localRepository><mirrors><mirror><id>g</id><mirrorOf>central</mirrorOf><url>https://g.example/m2</url></mirror></mirrors></settings>",
        )
        .unwrap();
        let source = MavenSource::from_settings(Some(&user), Some(&global), None);
        assert_eq!(source.local_repository, Some(PathBuf::from("/u/repo")));
        assert_eq!(source.remote, "https://g.example/m2");
    }

    #[test]
    fn malformed_settings_are_an_error() {
        assert!(parse_settings("<settings><mirrors>").is_err());
    }

    #[test]
    fn checksum_files_are_read_with_or_without_a_file_name() {
        let sum = "a9993e364706816aba3e25717850c26c9cd0d89d";
        assert_eq!(parse_sha1(sum).as_deref(), Some(sum));
        assert_eq!(
            parse_sha1(&format!("{}  abc.jar\n", sum.to_uppercase())).as_deref(),
            Some(sum)
        );
        assert_eq!(parse_sha1("<html>not found</html>"), None);
        assert_eq!(parse_sha1(""), None);
    }

    #[test]
    fn the_verifier_accepts_the_right_sum_and_names_the_file_otherwise() {
        // SHA-1("abc"), FIPS 180-2's example.
        assert!(verify_sha1("x.jar", b"abc", "A9993E364706816ABA3E25717850C26C9CD0D89D").is_ok());
        let err =
            verify_sha1("x.jar", b"abd", "a9993e364706816aba3e25717850c26c9cd0d89d").unwrap_err();
        assert!(matches!(err, MavenError::ChecksumMismatch { .. }));
        assert!(err.to_string().contains("x.jar"));
    }

    #[test]
    fn the_local_repository_is_used_only_with_a_matching_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CORE.repository_path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"jar bytes").unwrap();
        let source = MavenSource {
            remote: "http://127.0.0.1:9/unused".into(),
            mirror_id: None,
            local_repository: Some(dir.path().to_path_buf()),
        };
        let fetcher = Fetcher::new(source).unwrap();
        assert!(
            fetcher.read_local_repository(&CORE).is_none(),
            "no .sha1 yet"
        );
        std::fs::write(
            path.with_extension("jar.sha1"),
            "0000000000000000000000000000000000000000",
        )
        .unwrap();
        assert!(fetcher.read_local_repository(&CORE).is_none(), "wrong sum");
        std::fs::write(path.with_extension("jar.sha1"), sha1_hex(b"jar bytes")).unwrap();
        assert_eq!(fetcher.read_local_repository(&CORE).unwrap(), b"jar bytes");
    }

    #[test]
    fn settings_interpolate_home_and_environment() {
        assert_eq!(interpolate("${user.home}/r", Some(Path::new("/h"))), "/h/r");
        assert_eq!(interpolate("/a/${unknown}/b", None), "/a/${unknown}/b");
        assert_eq!(interpolate("/a/${open", None), "/a/${open");
    }
}
