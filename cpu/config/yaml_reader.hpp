#pragma once
/// Maps YAML onto plain config structs in one place, with validation: an unknown key, a
/// wrong type or an out-of-range value throws InputError naming the file, the line and
/// the dotted key (or the --set override it came from).
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace freshrec {

/// A YAML mapping being read. Every key must be consumed by a get/section call before
/// `finish()`, which rejects whatever is left over as unknown.
class YamlSection {
 public:
  /// `origin` names the file; `overridden` holds the dotted keys that came from --set.
  YamlSection(YAML::Node node, std::string path, std::string origin, const std::set<std::string>* overridden);
  /// Throws InputError naming both lines when the mapping `node` (at dotted `path`) holds a
  /// key twice; the constructor checks its own node, callers reading a mapping raw call this.
  static void require_unique_keys(const YAML::Node& node, const std::string& path, const std::string& origin,
                                  const std::set<std::string>* overridden);

  /// Optional scalar: leaves `out` at its default when absent.
  void get(const std::string& key, std::string& out);
  void get(const std::string& key, bool& out);
  void get(const std::string& key, int& out, long long min, long long max);
  void get(const std::string& key, std::int64_t& out, long long min, long long max);
  void get(const std::string& key, std::uint64_t& out);
  void get(const std::string& key, double& out, double min, double max);
  void get(const std::string& key, float& out, double min, double max);
  /// A string that must be one of `choices` (their keys); stores the mapped value.
  template <typename Enum>
  void get_enum(const std::string& key, Enum& out, const std::vector<std::pair<std::string, Enum>>& choices) {
    std::string text;
    if (!present(key)) return;
    get(key, text);
    for (const auto& [name, value] : choices)
      if (name == text) {
        out = value;
        return;
      }
    std::string allowed;
    for (const auto& c : choices) allowed += (allowed.empty() ? "" : ", ") + c.first;
    fail(key, "'" + text + "' is not one of: " + allowed);
  }
  /// A nested mapping (an empty one when absent); `read` consumes its keys.
  void section(const std::string& key, const std::function<void(YamlSection&)>& read);
  /// Every key of a nested mapping, for free-form maps (e.g. event weights).
  std::vector<std::string> keys_of(const std::string& key);
  bool has(const std::string& key) const;
  /// Throws for every key present but never read.
  void finish();
  /// Throws InputError for `key` with `what`, prefixed with where it came from.
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  std::string dotted(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  /// has(key), and marks a key given an explicit null as read (it keeps the default).
  bool present(const std::string& key);
  YAML::Node scalar(const std::string& key);
  std::string where(const std::string& key) const;

  YAML::Node node_;
  std::string path_;
  std::string origin_;
  const std::set<std::string>* overridden_;
  std::set<std::string> consumed_;
};

/// Loads a YAML file and applies `--set key.path=value` overrides (value parsed as YAML,
/// so numbers and booleans keep their type). Records the overridden keys in `overridden`.
YAML::Node load_yaml_with_overrides(const std::string& file, const std::vector<std::string>& overrides,
                                    std::set<std::string>& overridden);

/// The same for YAML text; `origin` names it in error messages.
YAML::Node parse_yaml_with_overrides(const std::string& text, const std::string& origin,
                                     const std::vector<std::string>& overrides, std::set<std::string>& overridden);

/// Applies `--set key.path=value` overrides to `root` in place.
void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides, std::set<std::string>& overridden);

}  // namespace freshrec
