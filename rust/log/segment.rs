//! Segment files: `{first_position:020}.seg`, listed in position order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const SUFFIX: &str = ".seg";

pub fn path(dir: &Path, first_position: u64) -> PathBuf {
    dir.join(format!("{first_position:020}{SUFFIX}"))
}

/// First positions of the segments in `dir`, ascending. Other files are ignored.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SUFFIX) {
            if let Ok(first) = stem.parse::<u64>() {
                firsts.push(first);
            }
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// fsync a directory so a created or removed entry survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
