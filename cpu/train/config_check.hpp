#pragma once
#include "cpu/train/train_config.hpp"

namespace freshrec {

/// Rejects a TrainConfig a trainer cannot run with (non-positive factors, negative
/// regularisation, NaN rates, ...): throws InputError naming the `train.<key>`.
/// The YAML loader validates too; this guards configs built in code.
void validate_train_config(const TrainConfig& config);

}  // namespace freshrec
