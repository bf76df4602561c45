#pragma once
/// Versioned model snapshots on disk (ARCHITECTURE.md "Snapshot format").
///
///   models/<version>/manifest.json     format, provenance, shapes, and the byte size and
///                                       sha256 of every other file
///   models/<version>/user_factors.npy  float32 n_users x k, C order
///   models/<version>/item_factors.npy  float32 n_items x k, C order
///   models/<version>/user_bias.npy     float32 n_users
///   models/<version>/item_bias.npy     float32 n_items
///   models/<version>/user_ids.txt      one id a line ('\n'), row order
///   models/<version>/item_ids.txt
///   models/LATEST                      the current version's name and '\n'
///
/// Trust chain: LATEST names a directory; its manifest.json must parse, pass the
/// structural checks and match its own "manifest_sha256" (the sha256 of the manifest
/// re-serialised compactly without that key, so it covers global_bias, counts,
/// cutoff and hyperparameters, which no other file checks); every other file is
/// trusted only through the byte size and sha256 the manifest records. These checksums
/// catch corruption, not a deliberate forger. The manifest is written last, inside the
/// temporary directory, and becomes visible only with the rename of that directory, so
/// a crash never leaves a published version with a half-written manifest.
///
/// Ids holding '\n' or '\r' cannot be stored one a line; write_snapshot rejects them
/// (InputError naming the id) rather than escaping, so that any tool reading the id
/// files with a plain line split gets exactly the ids.
#include <cstdint>
#include <string>

#include "cpu/model/factor_model.hpp"

namespace freshrec {

/// The snapshot format this build writes and the only one it reads.
inline constexpr int kSnapshotFormatVersion = 1;

/// Where a snapshot lives and what its manifest says about it.
struct SnapshotInfo {
  std::string version;     ///< directory name under models/, e.g. "20261128T201500Z"
  std::string path;        ///< models_dir + "/" + version
  std::string created_at;  ///< ISO-8601 UTC wall-clock time the snapshot was written
  double data_cutoff = 0;  ///< epoch seconds: latest event time the model saw
  int format_version = kSnapshotFormatVersion;
  ModelKind kind = ModelKind::kImplicit;
  int factors = 0;
  std::int32_t n_users = 0;
  std::int32_t n_items = 0;
};

/// Writes `model` as models_dir/<version>/ (creating models_dir when missing):
/// every file goes into models_dir/.tmp-<version>-<pid>/ and is fsynced, the manifest
/// last; the directory is fsynced, renamed to <version>, and models_dir fsynced; then,
/// when `publish_latest`, LATEST is replaced atomically.
/// An empty `version` means the current UTC time ("20261128T201500Z"), with "-2", "-3"…
/// appended when that name is taken. An explicit version that exists is refused with
/// InputError unless `overwrite`, in which case the new directory is swapped in
/// atomically (renameat2 RENAME_EXCHANGE) and the old one removed.
/// Empty bias vectors (an implicit model that never sized them) are stored as zeros.
/// Throws InputError for an invalid version name, an id holding '\n'/'\r', a
/// non-finite value or inconsistent shapes in `model` (nothing is published then), and
/// IoError when the file system fails; the temporary directory is removed on failure.
SnapshotInfo write_snapshot(const FactorModel& model, const std::string& models_dir,
                            const std::string& version = "", bool publish_latest = true,
                            bool overwrite = false);

/// Loads and fully verifies the snapshot directory `snapshot_dir`: manifest structure
/// (known format version, shapes consistent with counts and factors), every file's byte
/// size and sha256, ids unique with one per row, every stored value finite.
/// Throws IntegrityError naming the file and what is wrong, e.g.
/// "…/item_factors.npy: sha256 mismatch (expected …, got …)"; a directory without
/// manifest.json gives "…: not a snapshot (no manifest.json)". Fills `info` if given.
FactorModel load_snapshot(const std::string& snapshot_dir, SnapshotInfo* info = nullptr);

/// Reads and checks only the manifest of `snapshot_dir` (no data file is opened).
/// Same errors as load_snapshot for the manifest.
SnapshotInfo read_snapshot_info(const std::string& snapshot_dir);

/// The version named by models_dir/LATEST. Throws InputError when there is no LATEST
/// (nothing published yet) and IntegrityError when it does not hold a valid version name.
std::string read_latest(const std::string& models_dir);

/// load_snapshot(models_dir/<read_latest(models_dir)>); leftover temporary directories
/// of interrupted writers are never looked at.
FactorModel load_latest(const std::string& models_dir, SnapshotInfo* info = nullptr);

/// Points models_dir/LATEST at `version` atomically (temp file, fsync, rename, fsync
/// models_dir). Throws InputError when models_dir/<version>/manifest.json does not
/// exist; the snapshot's data files are not re-verified here.
void publish_latest(const std::string& models_dir, const std::string& version);

/// Throws InputError unless `version` is a usable directory name: 1..128 characters
/// from [A-Za-z0-9._-], not starting with '.', and not "LATEST".
void validate_snapshot_version(const std::string& version);

}  // namespace freshrec
