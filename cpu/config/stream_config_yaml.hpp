#pragma once
/// configs/stream.yaml → StreamProcessConfig (process settings + the engine's
/// StreamConfig), validated in one place: an unknown key, a wrong type or an
/// out-of-range value throws InputError naming the file, the line and the dotted key
/// (or the --set override it came from).
#include <string>
#include <vector>

#include "cpu/stream/updater_config.hpp"

namespace freshrec {

/// Reads `file`, applies `--set key.path=value` overrides, validates every key.
StreamProcessConfig load_stream_config(const std::string& file, const std::vector<std::string>& overrides = {});

/// Same for YAML text (tests, embedded defaults); `origin` names it in errors.
StreamProcessConfig parse_stream_config(const std::string& yaml_text, const std::string& origin,
                                        const std::vector<std::string>& overrides = {});

}  // namespace freshrec
