// End-to-end tests of the nightly job: the library entry point and the freshrec-train
// binary (exit codes, metrics file), plus the ML-100K quality floor.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cpu/config/nightly_config.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/nightly/nightly_job.hpp"
#include "cpu/util/error.hpp"

namespace fs = std::filesystem;

namespace freshrec {
namespace {

class NightlyJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("freshrec-nightly-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  NightlyConfig small_generated_config() const {
    return parse_nightly_config(R"(
data:
  format: generated
  generator: {events: 30000, users: 600, items: 300, categories: 8, seed: 3}
train: {factors: 16, iterations: 4, threads: 2, backend: cpu}
eval: {protocol: time-global, train_fraction: 0.8, refit_on_full_log: true}
output: {warm_start: latest}
)",
                                "test.yaml", {"output.dir=" + (dir_ / "models").string()});
  }

  fs::path dir_;
};

TEST_F(NightlyJobTest, GeneratedDataTrainsEvaluatesAndPublishes) {
  const NightlyConfig config = small_generated_config();
  const NightlyResult r = run_nightly_job(config, nullptr);
  ASSERT_TRUE(fs::exists(fs::path(r.snapshot_dir) / "manifest.json"));
  std::ifstream latest(dir_ / "models" / "LATEST");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, r.version);
  for (const char* key : {"ndcg@10", "precision@10", "recall@10", "map@10", "hr@10"}) {
    ASSERT_TRUE(r.report["metrics"].contains(key)) << key;
    ASSERT_TRUE(r.report["baseline"].contains(key)) << key;
    const double v = r.report["metrics"][key];
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  EXPECT_GT(r.report["metrics"]["hr@10"].get<double>(), 0.0);
  EXPECT_EQ(r.report["timing"]["iterations"].size(), 4u);
  EXPECT_EQ(r.report["timing"]["iterations_full"].size(), 4u);
  const FactorModel m = load_latest((dir_ / "models").string());
  EXPECT_EQ(m.factors(), 16);
  EXPECT_TRUE(m.user_factors.allFinite());
  EXPECT_TRUE(m.item_factors.allFinite());
}

TEST_F(NightlyJobTest, SecondRunWarmStartsAndRepublishes) {
  NightlyConfig config = small_generated_config();
  config.eval.enabled = false;
  const NightlyResult first = run_nightly_job(config, nullptr);
  config.output.version = "second";
  const NightlyResult second = run_nightly_job(config, nullptr);
  EXPECT_NE(first.version, second.version);
  EXPECT_TRUE(fs::exists(first.snapshot_dir)) << "publishing must keep the previous version";
  EXPECT_EQ(load_latest((dir_ / "models").string()).n_users(), load_snapshot(first.snapshot_dir).n_users());
  std::ifstream latest(dir_ / "models" / "LATEST");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "second");
}

int run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(NightlyJobTest, BinaryExitCodesAndMetricsFile) {
  const std::string bin = FRESHREC_TRAIN_BIN;
  const std::string cfg = std::string(FRESHREC_SOURCE_DIR) + "/configs/nightly.yaml";
  const std::string models = (dir_ / "models").string();
  const std::string metrics = (dir_ / "m.json").string();
  const std::string quiet = " >/dev/null 2>&1";
  EXPECT_EQ(run(bin + " --help" + quiet), 0);
  EXPECT_EQ(run(bin + " --config " + cfg + " --set train.factors=zero" + quiet), 2);
  EXPECT_EQ(run(bin + " --config " + (dir_ / "missing.yaml").string() + quiet), 2);
  EXPECT_EQ(run(bin + " --config " + cfg + " --set data.format=ndjson --set data.path=" + (dir_ / "none.ndjson").string() +
                " --set output.dir=" + models + quiet),
            3);
  EXPECT_EQ(run(bin + " --config " + cfg +
                " --set data.generator.events=20000 --set data.generator.users=500 --set data.generator.items=200"
                " --set train.factors=8 --set train.iterations=2 --set train.backend=cpu --set output.dir=" +
                models + " --metrics-out " + metrics + quiet),
            0);
  std::ifstream in(metrics);
  const nlohmann::json m = nlohmann::json::parse(in);
  EXPECT_TRUE(m["metrics"].contains("ndcg@10"));
  EXPECT_TRUE(m["baseline"].contains("ndcg@10"));
  EXPECT_TRUE(m["timing"].contains("total_s"));
  // A corrupt warm-start snapshot is refused with its own exit code.
  const std::string version = [&] {
    std::ifstream l(models + "/LATEST");
    std::string v;
    l >> v;
    return v;
  }();
  {
    std::fstream f(models + "/" + version + "/item_factors.npy", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  EXPECT_EQ(run(bin + " --config " + cfg + " --set data.generator.events=20000 --set train.iterations=1 --set output.dir=" +
                models + quiet),
            4);
}

// The quality floor of the shipped ML-100K config (stratified-item, K=10): a little under
// what it reaches (README "Quality"), so a regression fails here.
constexpr double kNdcgFloor = 0.47;   // reached: 0.4856
constexpr double kPrecisionFloor = 0.40;  // reached: 0.4208
TEST(Ml100kQuality, ShippedConfigMeetsTheFloor) {
  const std::string data = std::string(FRESHREC_SHARED_DATA_DIR) + "/ml-100k/u.data";
  if (!fs::exists(data)) GTEST_SKIP() << data << " not present";
  const fs::path out = fs::temp_directory_path() / ("freshrec-ml100k-" + std::to_string(::getpid()));
  NightlyConfig config = load_nightly_config(std::string(FRESHREC_SOURCE_DIR) + "/configs/ml100k.yaml",
                                             {"data.path=" + data, "output.dir=" + out.string()});
  const NightlyResult r = run_nightly_job(config, nullptr);
  fs::remove_all(out);
  const double ndcg = r.report["metrics"]["ndcg@10"];
  const double precision = r.report["metrics"]["precision@10"];
  RecordProperty("ndcg_at_10", std::to_string(ndcg));
  EXPECT_GE(ndcg, kNdcgFloor) << "precision@10 " << precision;
  EXPECT_GE(precision, kPrecisionFloor);
  EXPECT_GT(ndcg, r.report["baseline"]["ndcg@10"].get<double>());
}

}  // namespace
}  // namespace freshrec
