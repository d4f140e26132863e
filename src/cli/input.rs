//! Files the user names that the CLI reads whole (published objects, a manifest, a copy
//! checkpoint). Each has a limit, checked while reading: at most one byte past it is read before
//! the file is refused, so `/dev/zero`, a FIFO or a mistaken multi-gigabyte path cannot exhaust
//! memory before the size check would have refused it anyway.

use std::path::Path;

use pinvault::Error;
use tokio::io::AsyncReadExt;

use crate::cli::exit::CliError;

/// Reads all of `path`, or refuses it with [`Error::InvalidInput`] naming the file and the limit
/// once it holds more than `limit` bytes. `limit_name` says whose limit it is ("the fs
/// backend's largest object"). Opening or reading errors are [`CliError::File`].
pub async fn read_whole(path: &Path, limit: u64, limit_name: &str) -> Result<Vec<u8>, CliError> {
    let file_error = |source| CliError::File { path: path.display().to_string(), source };
    let file = tokio::fs::File::open(path).await.map_err(file_error)?;
    // Sized from the metadata when it is believable; devices and pipes report 0 and grow.
    let expected = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(expected.min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).await.map_err(file_error)?;
    if bytes.len() as u64 > limit {
        return Err(Error::invalid(
            path.display().to_string(),
            format!("larger than {limit_name} ({limit} bytes)"),
        )
        .into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_over_its_limit_is_refused_after_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("five");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_whole(&path, 5, "the limit").await.unwrap(), b"12345");
        let err = read_whole(&path, 4, "the test's limit").await.unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert!(err.to_string().contains("larger than the test's limit (4 bytes)"), "{err}");

        let zero = read_whole(Path::new("/dev/zero"), 1024, "1 KiB").await.unwrap_err();
        assert_eq!(zero.exit_code(), 5, "{zero}");
        let missing = read_whole(&dir.path().join("missing"), 1, "x").await.unwrap_err();
        assert_eq!(missing.exit_code(), 3, "{missing}");
    }
}
