#include "cpu/config/yaml_reader.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "cpu/util/error.hpp"

namespace freshrec {

YamlSection::YamlSection(YAML::Node node, std::string path, std::string origin,
                         const std::set<std::string>* overridden)
    : node_(std::move(node)), path_(std::move(path)), origin_(std::move(origin)), overridden_(overridden) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    const auto mark = node_.Mark();
    throw InputError(origin_ + (mark.line >= 0 ? ":" + std::to_string(mark.line + 1) : std::string()) +
                     ": key '" + (path_.empty() ? std::string("<root>") : path_) + "': expected a mapping");
  }
  require_unique_keys(node_, path_, origin_, overridden_);
}

void YamlSection::require_unique_keys(const YAML::Node& node, const std::string& path, const std::string& origin,
                                      const std::set<std::string>* overridden) {
  // yaml-cpp keeps every copy of a repeated key and lookups see only the first, so a
  // second value would be dropped silently.
  if (!node || !node.IsMap()) return;
  std::map<std::string, int> first_line;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string full = path.empty() ? key : path + "." + key;
    const int line = kv.first.Mark().line;
    const auto [it, inserted] = first_line.emplace(key, line);
    if (inserted) continue;
    std::string msg = origin;
    if (!(overridden && overridden->count(full)) && line >= 0) msg += ":" + std::to_string(line + 1);
    msg += ": key '" + full + "': duplicate key";
    if (it->second >= 0) msg += " (first at line " + std::to_string(it->second + 1) + ")";
    throw InputError(msg);
  }
}

bool YamlSection::present(const std::string& key) {
  const YAML::Node& node = node_;  // const lookups: a missing key is not added
  if (node && node.IsMap() && node[key]) consumed_.insert(key);
  return has(key);
}

bool YamlSection::has(const std::string& key) const {
  return node_ && node_.IsMap() && node_[key] && !node_[key].IsNull();
}

std::string YamlSection::where(const std::string& key) const {
  const std::string full = dotted(key);
  if (overridden_ && overridden_->count(full)) return "--set " + full;
  int line = -1;
  if (node_ && node_.IsMap() && node_[key]) line = node_[key].Mark().line;
  if (line < 0 && node_) line = node_.Mark().line;
  return origin_ + (line >= 0 ? ":" + std::to_string(line + 1) : std::string()) + ": key '" + full + "'";
}

void YamlSection::fail(const std::string& key, const std::string& what) const {
  throw InputError(where(key) + ": " + what);
}

YAML::Node YamlSection::scalar(const std::string& key) {
  consumed_.insert(key);
  YAML::Node v = node_[key];
  if (!v.IsScalar()) fail(key, "expected a single value, got a list or mapping");
  return v;
}

void YamlSection::get(const std::string& key, std::string& out) {
  if (!present(key)) return;  // an explicit null keeps the default
  out = scalar(key).Scalar();
}

void YamlSection::get(const std::string& key, bool& out) {
  if (!present(key)) return;
  const std::string text = scalar(key).Scalar();
  if (text == "true" || text == "yes" || text == "on") out = true;
  else if (text == "false" || text == "no" || text == "off") out = false;
  else fail(key, "expected true or false, got '" + text + "'");
}

namespace {
bool parse_integer(const std::string& text, long long& value) {
  if (text.empty()) return false;
  std::size_t used = 0;
  try {
    value = std::stoll(text, &used, 10);
  } catch (...) {
    return false;
  }
  return used == text.size();
}
bool parse_real(const std::string& text, double& value) {
  if (text.empty()) return false;
  std::size_t used = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    return false;
  }
  return used == text.size();
}
std::string fmt_range_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

void YamlSection::get(const std::string& key, std::int64_t& out, long long min, long long max) {
  if (!present(key)) return;
  const std::string text = scalar(key).Scalar();
  long long v = 0;
  double real = 0;
  // Accept 2e6 style integers too, as long as they are whole numbers.
  if (!parse_integer(text, v)) {
    if (parse_real(text, real) && std::isfinite(real) && real == std::floor(real) && std::fabs(real) < 9e18)
      v = static_cast<long long>(real);
    else
      fail(key, "expected an integer, got '" + text + "'");
  }
  if (v < min || v > max)
    fail(key, std::to_string(v) + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  out = v;
}

void YamlSection::get(const std::string& key, int& out, long long min, long long max) {
  std::int64_t v = out;
  get(key, v, min, max);
  out = static_cast<int>(v);
}

void YamlSection::get(const std::string& key, std::uint64_t& out) {
  std::int64_t v = static_cast<std::int64_t>(out);
  get(key, v, 0, std::numeric_limits<std::int64_t>::max());
  out = static_cast<std::uint64_t>(v);
}

void YamlSection::get(const std::string& key, double& out, double min, double max) {
  if (!present(key)) return;
  const std::string text = scalar(key).Scalar();
  double v = 0;
  if (!parse_real(text, v) || !std::isfinite(v)) fail(key, "expected a finite number, got '" + text + "'");
  if (v < min || v > max)
    fail(key, text + " is out of range [" + fmt_range_value(min) + ", " + fmt_range_value(max) + "]");
  out = v;
}

void YamlSection::get(const std::string& key, float& out, double min, double max) {
  double v = out;
  get(key, v, min, max);
  out = static_cast<float>(v);
}

void YamlSection::section(const std::string& key, const std::function<void(YamlSection&)>& read) {
  YAML::Node child;
  if (node_ && node_.IsMap() && node_[key]) {
    consumed_.insert(key);
    child = node_[key];
  }
  YamlSection sub(child, dotted(key), origin_, overridden_);
  read(sub);
  sub.finish();
}

std::vector<std::string> YamlSection::keys_of(const std::string& key) {
  std::vector<std::string> keys;
  if (!present(key)) return keys;
  const YAML::Node child = node_[key];
  if (!child.IsMap()) fail(key, "expected a mapping");
  for (const auto& kv : child) keys.push_back(kv.first.Scalar());
  return keys;
}

void YamlSection::finish() {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.Scalar();
    if (!consumed_.count(key)) fail(key, "unknown key");
  }
}

namespace {
YAML::Node checked_root(YAML::Node root, const std::string& origin) {
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw InputError(origin + ": the top level must be a mapping");
  return root;
}
}  // namespace

YAML::Node load_yaml_with_overrides(const std::string& file, const std::vector<std::string>& overrides,
                                    std::set<std::string>& overridden) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw InputError(file + ": cannot open config file");
  } catch (const YAML::Exception& e) {
    throw InputError(file + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  root = checked_root(root, file);
  apply_overrides(root, overrides, overridden);
  return root;
}

YAML::Node parse_yaml_with_overrides(const std::string& text, const std::string& origin,
                                     const std::vector<std::string>& overrides, std::set<std::string>& overridden) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(origin + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  root = checked_root(root, origin);
  apply_overrides(root, overrides, overridden);
  return root;
}

void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides, std::set<std::string>& overridden) {
  for (const std::string& assignment : overrides) {
    const auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError("--set " + assignment + ": expected key.path=value");
    const std::string key = assignment.substr(0, eq);
    const std::string text = assignment.substr(eq + 1);
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
      const auto dot = key.find('.', start);
      parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    for (const auto& p : parts)
      if (p.empty()) throw InputError("--set " + assignment + ": empty component in key '" + key + "'");
    YAML::Node value;
    try {
      value = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw InputError("--set " + assignment + ": value is not valid YAML: " + e.msg);
    }
    if (text.empty()) value = YAML::Node(std::string());
    // Walk/create the mapping chain. yaml-cpp nodes are handles, so assigning through
    // a copy writes into the tree.
    std::vector<YAML::Node> chain{root};
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node next = chain.back()[parts[i]];
      if (!next || next.IsNull()) {
        chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
        next = chain.back()[parts[i]];
      } else if (!next.IsMap()) {
        throw InputError("--set " + assignment + ": '" + parts[i] + "' is a value, not a section");
      }
      chain.push_back(next);
    }
    chain.back()[parts.back()] = value;
    overridden.insert(key);
  }
}

}  // namespace freshrec
