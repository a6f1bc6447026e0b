//! The `site-packages` a Python runtime's functions see: what AWS's Python
//! images carry there, not what the host installed.
//!
//! AWS builds each Python image's interpreter with `ensurepip`, so its
//! `/var/lang/lib/python3.X/site-packages` holds exactly what that
//! interpreter's `ensurepip` bundles: `pip` and, through Python 3.11,
//! `setuptools` (with `pkg_resources` and `_distutils_hack`); Python 3.12's
//! `ensurepip` bundles `pip` only. Strato does the same with the host
//! interpreter's own bundled wheels (`lib/python3.X/ensurepip/_bundled`):
//! installing a pure-Python wheel is unpacking it, so they are unpacked once
//! into `<runtimes dir>/python/3.X/site-packages`, which instances see at
//! AWS's path. The host's own `site-packages` stays hidden.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SitePackagesError {
    #[error("reading {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("unpacking {}: {source}", .wheel.display())]
    Wheel {
        wheel: PathBuf,
        source: zip::result::ZipError,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SitePackagesError + '_ {
    move |source| SitePackagesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The wheels `ensurepip` of the interpreter installed at `prefix` bundles.
pub fn bundled_wheels(prefix: &Path, minor: u32) -> Vec<PathBuf> {
    let bundled = prefix
        .join("lib")
        .join(format!("python3.{minor}"))
        .join("ensurepip")
        .join("_bundled");
    let mut wheels: Vec<PathBuf> = fs::read_dir(bundled)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "whl"))
                .collect()
        })
        .unwrap_or_default();
    wheels.sort();
    wheels
}

/// `<runtimes_dir>/python/3.<minor>/site-packages`, holding the unpacked
/// `wheels` (made once, atomically, so servers sharing the directory agree).
pub fn provide(
    runtimes_dir: &Path,
    minor: u32,
    wheels: &[PathBuf],
) -> Result<PathBuf, SitePackagesError> {
    let version_dir = runtimes_dir.join("python").join(format!("3.{minor}"));
    let target = version_dir.join("site-packages");
    if target.is_dir() {
        return Ok(target);
    }
    fs::create_dir_all(&version_dir).map_err(io_at(&version_dir))?;
    let staging = version_dir.join(format!(".site-packages.{}", uuid::Uuid::new_v4().simple()));
    let unpacked = unpack_all(wheels, &staging);
    let result = unpacked.and_then(|()| {
        for dir in [runtimes_dir.join("python"), version_dir.clone()] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(io_at(&dir))?;
        }
        match fs::rename(&staging, &target) {
            Ok(()) => Ok(()),
            // Another server made it first: theirs is the same.
            Err(_) if target.is_dir() => Ok(()),
            Err(source) => Err(SitePackagesError::Io {
                path: target.clone(),
                source,
            }),
        }
    });
    if staging.exists() {
        let _ = fs::remove_dir_all(&staging);
    }
    result.map(|()| target)
}

fn unpack_all(wheels: &[PathBuf], into: &Path) -> Result<(), SitePackagesError> {
    fs::create_dir_all(into).map_err(io_at(into))?;
    fs::set_permissions(into, fs::Permissions::from_mode(0o755)).map_err(io_at(into))?;
    for wheel in wheels {
        unpack(wheel, into)?;
    }
    Ok(())
}

/// Unpacks one wheel into `into`, every file readable by the sandbox user.
fn unpack(wheel: &Path, into: &Path) -> Result<(), SitePackagesError> {
    let zip_error = |source| SitePackagesError::Wheel {
        wheel: wheel.to_path_buf(),
        source,
    };
    let file = fs::File::open(wheel).map_err(io_at(wheel))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(zip_error)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        // Names that would leave the directory are not part of a wheel.
        let Some(relative) = entry.enclosed_name() else {
            continue;
        };
        let path = into.join(relative);
        if entry.is_dir() {
            make_dirs(into, &path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            make_dirs(into, parent)?;
        }
        let mut out = fs::File::create(&path).map_err(io_at(&path))?;
        io::copy(&mut entry, &mut out).map_err(io_at(&path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).map_err(io_at(&path))?;
    }
    Ok(())
}

/// Creates `dir` (under `root`) and its missing parents, each 0755.
fn make_dirs(root: &Path, dir: &Path) -> Result<(), SitePackagesError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if parent != root && parent.starts_with(root) {
            make_dirs(root, parent)?;
        }
    }
    fs::create_dir(dir).map_err(io_at(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn wheel(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let path = dir.join(name);
        let mut w = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        for (file, text) in files {
            w.start_file(*file, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(text.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn the_bundled_wheels_are_unpacked_once_into_the_runtime_site_packages() {
        let host = tempfile::tempdir().unwrap();
        let bundled = host.path().join("lib/python3.11/ensurepip/_bundled");
        fs::create_dir_all(&bundled).unwrap();
        wheel(
            &bundled,
            "setuptools-65.5.0-py3-none-any.whl",
            &[
                ("pkg_resources/__init__.py", "X = 1\n"),
                ("distutils-precedence.pth", "import os\n"),
                ("../escape.py", "no\n"),
            ],
        );
        wheel(
            &bundled,
            "pip-23.2.1-py3-none-any.whl",
            &[("pip/__init__.py", "__version__ = '23.2.1'\n")],
        );
        let wheels = bundled_wheels(host.path(), 11);
        assert_eq!(wheels.len(), 2);
        let runtimes = tempfile::tempdir().unwrap();
        let site = provide(runtimes.path(), 11, &wheels).unwrap();
        assert_eq!(site, runtimes.path().join("python/3.11/site-packages"));
        assert_eq!(
            fs::read_to_string(site.join("pkg_resources/__init__.py")).unwrap(),
            "X = 1\n"
        );
        assert!(site.join("pip/__init__.py").is_file());
        assert!(site.join("distutils-precedence.pth").is_file());
        assert!(!runtimes.path().join("python/3.11/escape.py").exists());
        let mode = fs::metadata(site.join("pip")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        // A second call keeps what is there.
        fs::write(site.join("marker"), "kept").unwrap();
        assert_eq!(provide(runtimes.path(), 11, &wheels).unwrap(), site);
        assert!(site.join("marker").is_file());
        // Nothing staged is left behind.
        let left: Vec<_> = fs::read_dir(runtimes.path().join("python/3.11"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("site-packages")]);
    }
}
