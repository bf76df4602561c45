#include <gtest/gtest.h>

#include <string>

#include "cpu/config/nightly_config.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_nightly_config(yaml, "test.yaml", overrides);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(NightlyConfig, EmptyYamlGivesDefaults) {
  const NightlyConfig c = parse_nightly_config("", "empty.yaml");
  EXPECT_EQ(c.data.format, DataFormat::kGenerated);
  EXPECT_EQ(c.train.factors, 64);
  EXPECT_EQ(c.train.algorithm, Algorithm::kAls);
  EXPECT_EQ(c.eval.k, 10);
  EXPECT_EQ(c.output.dir, "models");
}

TEST(NightlyConfig, ReadsEveryKindOfValue) {
  const NightlyConfig c = parse_nightly_config(R"(
data:
  path: some/u.data
  format: movielens-tsv
  max_bad_fraction: 0.5
train:
  algorithm: sgd
  backend: cpu
  factors: 32
  solver: cholesky
  compute_loss: false
  confidence:
    alpha: 10
    lambda_long: 1.0e-6
    event_weights: {purchase: 20, view: 0.5}
eval:
  protocol: leave-last-out
  k: 20
  refit_on_full_log: true
output:
  dir: /tmp/m
  warm_start: latest
)", "t.yaml");
  EXPECT_EQ(c.data.path, "some/u.data");
  EXPECT_EQ(c.data.format, DataFormat::kMovielensTsv);
  EXPECT_DOUBLE_EQ(c.data.max_bad_fraction, 0.5);
  EXPECT_EQ(c.train.algorithm, Algorithm::kSgd);
  EXPECT_EQ(c.train.backend, Backend::kCpu);
  EXPECT_EQ(c.train.factors, 32);
  EXPECT_EQ(c.train.solver, AlsSolver::kCholesky);
  EXPECT_FALSE(c.train.compute_loss);
  EXPECT_FLOAT_EQ(c.train.confidence.alpha, 10.0f);
  EXPECT_DOUBLE_EQ(c.train.confidence.lambda_long, 1e-6);
  EXPECT_FLOAT_EQ(c.train.confidence.weights[EventType::kPurchase], 20.0f);
  EXPECT_FLOAT_EQ(c.train.confidence.weights[EventType::kView], 0.5f);
  EXPECT_FLOAT_EQ(c.train.confidence.weights[EventType::kClick], EventWeights{}[EventType::kClick]);
  EXPECT_EQ(c.eval.protocol, SplitProtocol::kLeaveLastOut);
  EXPECT_EQ(c.eval.k, 20);
  EXPECT_TRUE(c.refit_on_full_log);
  EXPECT_EQ(c.output.warm_start, "latest");
}

TEST(NightlyConfig, UnknownKeyNamesKeyAndLine) {
  const std::string e = error_of("train:\n  factors: 8\n  facotrs: 9\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("train.facotrs"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_NE(error_of("bogus: 1\n").find("'bogus'"), std::string::npos);
  EXPECT_NE(error_of("train:\n  confidence:\n    event_weights: {like: 2}\n").find("train.confidence.event_weights.like"),
            std::string::npos);
}

TEST(NightlyConfig, WrongTypeAndRangeNameTheKey) {
  std::string e = error_of("train:\n  factors: many\n");
  EXPECT_NE(e.find("train.factors"), std::string::npos) << e;
  EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
  e = error_of("train:\n  factors: 0\n");
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  e = error_of("eval:\n  protocol: random\n");
  EXPECT_NE(e.find("eval.protocol"), std::string::npos) << e;
  EXPECT_NE(e.find("stratified-item"), std::string::npos) << e;
  e = error_of("train:\n  compute_loss: maybe\n");
  EXPECT_NE(e.find("true or false"), std::string::npos) << e;
  e = error_of("train: 3\n");
  EXPECT_NE(e.find("expected a mapping"), std::string::npos) << e;
  e = error_of("data:\n  format: ndjson\n");
  EXPECT_NE(e.find("data.path"), std::string::npos) << e;
  e = error_of("train:\n  regularization: .nan\n");
  EXPECT_NE(e.find("finite"), std::string::npos) << e;
  e = error_of("train: [1, 2\n");
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
}

TEST(NightlyConfig, OverridesApplyAndAreNamedInErrors) {
  const NightlyConfig c = parse_nightly_config("train:\n  factors: 8\n", "t.yaml",
                                               {"train.factors=16", "data.format=movielens-csv", "data.path=x.csv",
                                                "eval.k=5", "output.dir=out/models"});
  EXPECT_EQ(c.train.factors, 16);
  EXPECT_EQ(c.data.format, DataFormat::kMovielensCsv);
  EXPECT_EQ(c.eval.k, 5);
  EXPECT_EQ(c.output.dir, "out/models");
  std::string e = error_of("", {"train.factors=-3"});
  EXPECT_NE(e.find("--set train.factors"), std::string::npos) << e;
  e = error_of("", {"train.nope=1"});
  EXPECT_NE(e.find("--set train.nope"), std::string::npos) << e;
  e = error_of("", {"justakey"});
  EXPECT_NE(e.find("key.path=value"), std::string::npos) << e;
  e = error_of("train:\n  factors: 8\n", {"train.factors.x=1"});
  EXPECT_NE(e.find("not a section"), std::string::npos) << e;
}

// An explicit null ("factors:" with nothing after it) keeps the default, as for strings;
// it must not be reported as an unknown key.
TEST(NightlyConfig, NullValueKeepsTheDefault) {
  std::string e = error_of("train:\n  factors:\n  compute_loss: ~\n  solver: null\n  regularization:\n");
  EXPECT_EQ(e, "");
  const NightlyConfig c = parse_nightly_config("train:\n  factors:\n  solver:\n", "t.yaml");
  EXPECT_EQ(c.train.factors, 64);
}

// YAML forbids duplicate keys; yaml-cpp keeps both and lookups see only the first, so the
// second value would be dropped without a word.
TEST(NightlyConfig, DuplicateKeyIsRefusedNamingKeyAndLine) {
  std::string e = error_of("train:\n  factors: 8\n  iterations: 3\n  factors: 16\n");
  EXPECT_NE(e.find("test.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("train.factors"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate"), std::string::npos) << e;
  e = error_of("train:\n  factors: 8\ntrain:\n  iterations: 2\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate"), std::string::npos) << e;
}

// output.version becomes a directory name checked by the snapshot writer only after
// training; a name it will refuse must be refused while the config is read.
TEST(NightlyConfig, OutputVersionIsValidatedUpFront) {
  for (const char* bad : {"'nightly run'", "LATEST", ".hidden", "a\\b"}) {
    const std::string e = error_of(std::string("output:\n  version: ") + bad + "\n");
    EXPECT_NE(e.find("output.version"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_EQ(error_of("output:\n  version: v1.2_nightly-3\n"), "");
}

TEST(NightlyConfig, ShippedConfigsLoad) {
  for (const char* name : {"nightly.yaml", "ml100k.yaml"}) {
    const std::string path = std::string(FRESHREC_SOURCE_DIR) + "/configs/" + name;
    EXPECT_NO_THROW(load_nightly_config(path)) << path;
  }
}

}  // namespace
}  // namespace freshrec
