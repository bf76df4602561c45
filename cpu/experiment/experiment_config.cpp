#include "cpu/experiment/experiment_config.hpp"

#include <cctype>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "cpu/config/nightly_config.hpp"
#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/config/yaml_reader.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

std::string where(const std::string& origin, const YAML::Node& node, const std::string& key) {
  const int line = node ? node.Mark().line : -1;
  return origin + (line >= 0 ? ":" + std::to_string(line + 1) : std::string()) + ": key '" + key + "'";
}

[[noreturn]] void fail_at(const std::string& origin, const YAML::Node& node, const std::string& key,
                          const std::string& what) {
  throw InputError(where(origin, node, key) + ": " + what);
}

void check_keys(const YAML::Node& map, const std::string& path, const std::string& origin,
                const std::set<std::string>& allowed) {
  if (!map || map.IsNull()) return;
  if (!map.IsMap()) fail_at(origin, map, path, "expected a mapping");
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (!allowed.count(key)) fail_at(origin, kv.first, path.empty() ? key : path + "." + key, "unknown key");
  }
}

// Overlays `over` on `base` (mappings merge key by key; anything else replaces).
void deep_merge(YAML::Node base, const YAML::Node& over) {
  if (!over || over.IsNull()) return;
  for (const auto& kv : over) {
    const std::string key = kv.first.Scalar();
    YAML::Node b = base[key];
    if (b && b.IsMap() && kv.second.IsMap()) deep_merge(b, kv.second);
    else base[key] = YAML::Clone(kv.second);
  }
}

std::string emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (!n || n.IsNull()) return nullptr;
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return s;  // quoted: a string whatever it looks like
    if (s == "true" || s == "false") return s == "true";
    try {
      std::size_t pos = 0;
      const long long v = std::stoll(s, &pos);
      if (pos == s.size()) return v;
    } catch (...) {
    }
    try {
      std::size_t pos = 0;
      const double v = std::stod(s, &pos);
      if (pos == s.size() && std::isfinite(v)) return v;
    } catch (...) {
    }
    return s;
  }
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& x : n) a.push_back(yaml_to_json(x));
    return a;
  }
  nlohmann::json o = nlohmann::json::object();
  for (const auto& kv : n) o[kv.first.Scalar()] = yaml_to_json(kv.second);
  return o;
}

/// One place a merged section's keys came from: a section of the file's own nodes and its
/// dotted path there (the base `train`, or `variants.<name>.train`).
struct SectionSource {
  YAML::Node node;
  std::string path;
};

// Where the file sets `section.a.b`: the first of `sources` holding it names it, as
// "<file>:<line>", "--set <key>" when an override wrote it, or "<file>" when a merge or a
// sweep built the node holding it (no line of its own); "<file>" when none holds it.
std::string where_in_file(const std::string& dotted, const std::string& section, const std::vector<SectionSource>& sources,
                          const std::string& origin, const std::set<std::string>& overridden) {
  if (dotted.rfind(section + ".", 0) != 0) return origin;
  const std::string rest = dotted.substr(section.size() + 1);
  std::vector<std::string> parts;
  std::stringstream ss(rest);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  for (const SectionSource& source : sources) {
    YAML::Node at = source.node;
    int line = -1;
    bool found = !parts.empty();
    for (const std::string& part : parts) {
      bool hit = false;
      if (at && at.IsMap())
        for (const auto& kv : at)
          if (kv.first.Scalar() == part) {
            line = kv.first.Mark().line;
            at = kv.second;
            hit = true;
            break;
          }
      if (!hit) {
        found = false;
        break;
      }
    }
    if (!found) continue;
    const std::string key = source.path + "." + rest;
    if (overridden.count(key)) return "--set " + key;
    return line >= 0 ? origin + ":" + std::to_string(line + 1) : origin;
  }
  return origin;
}

// The train:/stream: keys are validated by their own loaders on the merged section, handed
// over as text, so the line in their error is one of that text: it is replaced by where the
// file sets the key, and the error names the variant.
[[noreturn]] void rethrow_in_file(const InputError& e, const std::string& parsed_as, const std::string& origin,
                                  const std::string& what, const std::string& section,
                                  const std::vector<SectionSource>& sources, const std::set<std::string>& overridden) {
  std::string msg = e.what();
  if (msg.rfind(parsed_as, 0) == 0) {
    std::size_t rest = parsed_as.size();  // at ": key ..." or at ":<line>: key ..."
    if (rest + 1 < msg.size() && msg[rest] == ':' && std::isdigit(static_cast<unsigned char>(msg[rest + 1])))
      rest = msg.find(':', rest + 1);
    std::string where = origin;
    const std::size_t key_at = msg.find("key '", rest);
    const std::size_t key_end = key_at == std::string::npos ? key_at : msg.find('\'', key_at + 5);
    if (key_end != std::string::npos)
      where = where_in_file(msg.substr(key_at + 5, key_end - key_at - 5), section, sources, origin, overridden);
    msg = where + msg.substr(rest);
  }
  throw InputError(msg + " (in " + what + " of " + origin + ")");
}

TrainConfig parse_train(const YAML::Node& train, const std::string& origin, const std::string& what,
                        const std::vector<SectionSource>& sources, const std::set<std::string>& overridden) {
  YAML::Node doc;
  doc["train"] = train && !train.IsNull() ? YAML::Clone(train) : YAML::Node(YAML::NodeType::Map);
  const std::string parsed_as = origin + " [" + what + "]";
  try {
    return parse_nightly_config(emit(doc), parsed_as).train;
  } catch (const InputError& e) {
    rethrow_in_file(e, parsed_as, origin, what, "train", sources, overridden);
  }
}

StreamConfig parse_stream(const YAML::Node& stream, const std::string& origin, const std::string& what,
                          const std::vector<SectionSource>& sources, const std::set<std::string>& overridden) {
  YAML::Node doc;
  doc["stream"] = stream && !stream.IsNull() ? YAML::Clone(stream) : YAML::Node(YAML::NodeType::Map);
  doc["source"]["type"] = "stdin";  // the process settings are not ours; only stream: is read
  const std::string parsed_as = origin + " [" + what + "]";
  try {
    return parse_stream_config(emit(doc), parsed_as).stream;
  } catch (const InputError& e) {
    rethrow_in_file(e, parsed_as, origin, what, "stream", sources, overridden);
  }
}

VariantSpec parse_variant(const std::string& name, const YAML::Node& node, const YAML::Node& base_train,
                          const YAML::Node& base_stream, const std::string& origin,
                          const std::set<std::string>& overridden) {
  VariantSpec v;
  v.name = name;
  const std::string path = "variants." + name;
  if (node && !node.IsNull() && !node.IsMap()) fail_at(origin, node, path, "expected a mapping");
  YamlSection s(node, path, origin, &overridden);
  s.get("description", v.description);
  s.get_enum("scorer", v.scorer,
             {{"engine", ScorerKind::kEngine}, {"frozen", ScorerKind::kFrozen}, {"popularity", ScorerKind::kPopularity}});
  s.get("retrain_every_days", v.retrain_every_days, 0.0, 3650.0);
  s.keys_of("train");  // checks it is a mapping; marks an explicit null as read
  s.keys_of("stream");
  s.finish();

  YAML::Node train = YAML::Clone(base_train && !base_train.IsNull() ? base_train : YAML::Node(YAML::NodeType::Map));
  if (node && node["train"]) deep_merge(train, node["train"]);
  YAML::Node stream = YAML::Clone(base_stream && !base_stream.IsNull() ? base_stream : YAML::Node(YAML::NodeType::Map));
  if (node && node["stream"]) deep_merge(stream, node["stream"]);
  const YAML::Node none;
  v.train = parse_train(train, origin, "train as merged for variant '" + name + "'",
                        {{node ? node["train"] : none, path + ".train"}, {base_train, "train"}}, overridden);
  v.stream = parse_stream(stream, origin, "stream as merged for variant '" + name + "'",
                          {{node ? node["stream"] : none, path + ".stream"}, {base_stream, "stream"}}, overridden);
  v.train_key = emit(train);
  v.overrides = yaml_to_json(node);
  return v;
}

std::string number_text(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

ExperimentConfig parse_root(const YAML::Node& root, const std::string& origin, const std::set<std::string>& overridden) {
  ExperimentConfig c;
  c.source = origin;
  c.resolved = yaml_to_json(root);
  if (!root || !root.IsMap()) throw InputError(origin + ": an experiment config must be a YAML mapping");
  // Variants, sweeps and the train:/stream: sections are read raw or merged and re-parsed
  // as text; a key given twice anywhere is refused here, with the file's lines.
  std::function<void(const YAML::Node&, const std::string&)> unique_keys = [&](const YAML::Node& n,
                                                                                const std::string& path) {
    if (!n || !n.IsMap()) return;
    YamlSection::require_unique_keys(n, path, origin, &overridden);
    for (const auto& kv : n) unique_keys(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar());
  };
  unique_keys(root, "");
  check_keys(root, "", origin,
             {"name", "description", "dataset", "protocol", "seeds", "threads", "train", "stream", "variants", "sweeps",
              "compare"});
  YamlSection top(root, "", origin, &overridden);
  {
    std::string stem = origin;
    const auto slash = stem.find_last_of('/');
    if (slash != std::string::npos) stem = stem.substr(slash + 1);
    const auto dot = stem.find_last_of('.');
    if (dot != std::string::npos) stem = stem.substr(0, dot);
    c.name = stem;
  }
  top.get("name", c.name);
  std::string description;
  top.get("description", description);
  top.get("threads", c.threads, 0, 4096);

  // dataset: the nightly data: keys plus as_event_type.
  {
    const YAML::Node ds = root["dataset"];
    if (!ds || !ds.IsMap()) fail_at(origin, ds ? ds : root, "dataset", "required mapping (format, path, ...)");
    YAML::Node data = YAML::Clone(ds);
    if (ds["as_event_type"]) {
      YamlSection s(ds, "dataset", origin, &overridden);
      std::string name;
      s.get("as_event_type", name);
      if (!name.empty() && name != "none") {
        auto t = parse_event_type(name);
        if (!t) s.fail("as_event_type", "'" + name + "' is not an event type (view, click, add_to_cart, purchase, search, rating) or none");
        c.dataset.as_event_type = *t;
      }
      data.remove("as_event_type");
    }
    YAML::Node doc;
    doc["data"] = data;
    try {
      c.dataset.data = parse_nightly_config(emit(doc), origin + " [dataset]").data;
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + " (data.* here is dataset.* of " + origin + ")");
    }
  }

  top.section("protocol", [&](YamlSection& s) {
    s.get("train_fraction", c.protocol.train_fraction, 0.01, 0.99);
    s.get("k", c.protocol.replay.k, 1, 100000);
    s.get("windows", c.protocol.replay.windows, 1, 100000);
    s.get("skip_seen_targets", c.protocol.replay.skip_seen_targets);
    std::int64_t max_events = static_cast<std::int64_t>(c.protocol.replay.max_stream_events);
    s.get("max_stream_events", max_events, 0, std::numeric_limits<std::int64_t>::max());
    c.protocol.replay.max_stream_events = static_cast<std::size_t>(max_events);
  });

  if (const YAML::Node seeds = root["seeds"]) {
    c.seeds.clear();
    if (seeds.IsScalar()) {
      try {
        c.seeds.push_back(seeds.as<std::uint64_t>());
      } catch (const YAML::Exception&) {
        fail_at(origin, seeds, "seeds", "'" + seeds.Scalar() + "' is not a non-negative integer");
      }
    } else if (seeds.IsSequence() && seeds.size() > 0) {
      for (const auto& s : seeds) {
        try {
          c.seeds.push_back(s.as<std::uint64_t>());
        } catch (const YAML::Exception&) {
          fail_at(origin, s, "seeds", "'" + s.Scalar() + "' is not a non-negative integer");
        }
      }
    } else {
      fail_at(origin, seeds, "seeds", "expected a non-empty list of integers");
    }
  }

  const YAML::Node base_train = root["train"];
  const YAML::Node base_stream = root["stream"];
  // Validate the bases on their own first: an error there should not name a variant.
  parse_train(base_train, origin, "train", {{base_train, "train"}}, overridden);
  parse_stream(base_stream, origin, "stream", {{base_stream, "stream"}}, overridden);

  const YAML::Node variants = root["variants"];
  if (!variants || !variants.IsMap() || variants.size() == 0)
    fail_at(origin, variants ? variants : root, "variants", "required: a mapping of at least one named variant");
  for (const auto& kv : variants)
    c.variants.push_back(parse_variant(kv.first.Scalar(), kv.second, base_train, base_stream, origin, overridden));

  if (const YAML::Node sweeps = root["sweeps"]; sweeps && !sweeps.IsNull()) {
    if (!sweeps.IsMap()) fail_at(origin, sweeps, "sweeps", "expected a mapping of named sweeps");
    for (const auto& kv : sweeps) {
      SweepSpec sw;
      sw.name = kv.first.Scalar();
      const std::string path = "sweeps." + sw.name;
      const YAML::Node n = kv.second;
      check_keys(n, path, origin, {"variant", "key", "values"});
      if (!n || !n["variant"] || !n["key"] || !n["values"]) fail_at(origin, n, path, "needs variant, key and values");
      sw.variant = n["variant"].Scalar();
      sw.key = n["key"].Scalar();
      if (!variants[sw.variant]) fail_at(origin, n["variant"], path + ".variant", "no variant named '" + sw.variant + "'");
      const bool ok_key = sw.key.rfind("stream.", 0) == 0 || sw.key.rfind("train.", 0) == 0 || sw.key == "retrain_every_days";
      if (!ok_key) fail_at(origin, n["key"], path + ".key", "must start with stream. or train. (or be retrain_every_days)");
      if (!n["values"].IsSequence() || n["values"].size() == 0)
        fail_at(origin, n["values"], path + ".values", "expected a non-empty list of numbers");
      for (const auto& x : n["values"]) {
        try {
          sw.values.push_back(x.as<double>());
        } catch (const YAML::Exception&) {
          fail_at(origin, x, path + ".values", "'" + x.Scalar() + "' is not a number");
        }
      }
      for (double value : sw.values) {
        YAML::Node point = YAML::Clone(variants[sw.variant]);
        if (!point || point.IsNull()) point = YAML::Node(YAML::NodeType::Map);
        // Walk the dotted key, creating mappings as needed, and set the value.
        std::vector<std::string> parts;
        std::stringstream ss(sw.key);
        for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
        std::vector<YAML::Node> chain{point};
        for (std::size_t j = 0; j + 1 < parts.size(); ++j) {
          YAML::Node next = chain.back()[parts[j]];
          if (!next || next.IsNull()) {
            chain.back()[parts[j]] = YAML::Node(YAML::NodeType::Map);
            next = chain.back()[parts[j]];
          }
          chain.push_back(next);
        }
        chain.back()[parts.back()] = value;
        sw.points.push_back(parse_variant(sw.name + "=" + number_text(value), point, base_train, base_stream, origin,
                                          overridden));
      }
      c.sweeps.push_back(std::move(sw));
    }
  }

  top.section("compare", [&](YamlSection& s) {
    s.get("treatment", c.compare.treatment);
    s.get("baseline", c.compare.baseline);
  });
  return c;
}

}  // namespace

ExperimentConfig load_experiment_config(const std::string& file, const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = load_yaml_with_overrides(file, overrides, overridden);
  return parse_root(root, file, overridden);
}

ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& origin,
                                         const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = parse_yaml_with_overrides(yaml_text, origin, overrides, overridden);
  return parse_root(root, origin, overridden);
}

}  // namespace freshrec
