#pragma once
/// Wall-clock reading and UTC time formatting for artefact metadata (snapshot
/// versions, manifests). Event processing never uses these: event time drives it.
#include <cstdint>
#include <string>

namespace freshrec {

/// Current wall-clock time, seconds since the Unix epoch (UTC), with sub-second part.
double wall_clock_epoch_seconds();

/// ISO-8601 UTC, e.g. "2026-11-28T20:15:00Z"; a non-integral time gets milliseconds
/// ("2026-11-28T20:15:00.250Z"). Throws InputError for NaN/Inf or a time outside
/// years 0001..9999.
std::string format_iso8601_utc(double epoch_seconds);

/// Compact UTC stamp usable as a directory name, e.g. "20261128T201500Z"
/// (seconds resolution, fraction dropped toward -inf).
std::string format_compact_utc(double epoch_seconds);

}  // namespace freshrec
