// Learns the filter stage's search-side parameters (query transform A' and PQ
// codebooks C') with HAKES's self-supervised recipe (Hu et al., "HAKES: Scalable
// Vector Database for Embedding Search Service", VLDB 2025, §4): samples from the
// index (samples.h), KL loss (kl_loss.h), AdamW with linear warm-up (adamw.h), a
// learning-rate sweep chosen on a validation split of the samples, then IVF centroids
// re-centred in the learnt space (recenter.h). Insert params and stored codes are
// never touched; the result is installed with VectorIndex::set_search_params.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../index/params.h"
#include "samples.h"

namespace winnow::learn {

struct LearnConfig {
  SampleConfig sample;                           // queries, K, neighbour search settings
  double val_fraction = 0.1;                     // of the sampled queries, held out to choose
  size_t max_val = 4096;                         //   the learning rate (at most this many)
  size_t batch = 512;
  size_t epochs = 1;
  std::vector<double> lrs{1e-5, 1e-4, 1e-3};
  double weight_decay = 0.01;
  double warmup_fraction = 0.1;                  // of the steps, linear warm-up
  double reduction_term_weight = 1;              // weight of the KL term through A' alone (HAKES: 1)
  double temperature_scale = 1;                  // softmax temperature = this x mean neighbour-similarity std
  bool learn_transform = true;                   // false: only the PQ codebooks are learnt
  // AdamW's step is absolute (about lr per step whatever the gradient's scale), while the codebooks
  // and centroids are in the data's units (fashion-mnist pixels: rms 157) and the transform's entries
  // are ~1/sqrt(d). true: the codebooks' and the probing centroids' rates are scaled by their rms
  // over the transform's rms, so every group moves by the same relative amount (as if trained in
  // normalised units); weight decay stays at the base rate. OFF: one absolute rate (until 0.16);
  // BOTH: every rate is tried both ways and the validation loss chooses (the probe follows the choice);
  // AUTO: ON when the codebooks' scale factor is outside [0.1, 10] (the groups' units really differ:
  // fashion-mnist 4406, where ON raised validation recall 0.9974 -> 0.9988; wordnet-use-512 1.75,
  // where BOTH chose OFF, and 2.32 at reducedDim 64, where ON gave 0.9621 against 0.9636, stay OFF).
  enum ScaleLr { SCALE_OFF, SCALE_ON, SCALE_BOTH, SCALE_AUTO } scale_lr = SCALE_AUTO;
  bool recenter = true;
  bool learn_probe = true;                       // extension beyond HAKES: learn probing centroids (probe.h)
  bool probe_coverage_loss = true;               // coverage surrogate at probe_coverage_nprobe (false: cross-entropy)
  std::vector<double> probe_tau_scales{1, 2};    // probe temperature = this x tau, swept
  std::vector<double> probe_lrs{3e-4, 1e-3};     // empty: the main sweep's rates
  size_t probe_epochs = 4;                       // 0: as epochs
  size_t probe_target_k = 10;                    // 0: softmax weights over all K neighbours; else uniform over the first k
  size_t probe_coverage_nprobe = 0;              // 0: max(8, nlist/8)
  enum Install { NEVER, IF_BETTER, ALWAYS } install = IF_BETTER;  // IF_BETTER: validation must not regress
  size_t nthreads = 2;
  uint64_t seed = 1;
};

struct SweepPoint {
  double lr, val_loss;
  bool scaled = false;  // codebook rate scaled (LearnConfig::scale_lr)
};
struct ProbeSweepPoint {
  double tau_scale, lr, val_loss, val_coverage;
};

struct LearnReport {
  size_t train_queries = 0, val_queries = 0, neighbors = 0, steps = 0;
  double tau = 0;
  double val_loss_before = 0, val_loss_after = 0;  // at the chosen learning rate
  double lr = 0;
  double codebook_lr_scale = 1, probe_lr_scale = 1;  // LearnConfig::scale_lr
  std::vector<SweepPoint> sweep;
  // Recall@10 of the validation queries' own neighbour lists at a low-budget setting
  // (val_nprobe, val_kfactor) with the insert params and with the learnt ones.
  double val_recall_before = 0, val_recall_after = 0, val_recall_no_recenter = 0;
  size_t val_nprobe = 0, val_kfactor = 0;
  bool recentered = false, installed = false;
  bool probe_learned = false;
  double val_recall_probe = 0, probe_loss_before = 0, probe_loss_after = 0, probe_lr = 0, probe_tau_scale = 0;
  // Probe coverage (share of validation queries' top-10 neighbours stored in the first probe_nprobe
  // lists) before and after, and every (temperature, rate) tried.
  size_t probe_nprobe = 0;
  double probe_coverage_before = 0, probe_coverage_after = 0;
  std::vector<ProbeSweepPoint> probe_sweep;
  double seconds_samples = 0, seconds_train = 0, seconds_recenter = 0, seconds_total = 0;
  size_t bytes = 0;  // training working set (samples + optimiser state)
};

// Learns and (cfg.install) installs search params; `out` receives them either way.
LearnReport learn_search_params(VectorIndex& idx, const LearnConfig& cfg, const LearnProgress& progress,
                                std::shared_ptr<const Params>* out = nullptr);

}  // namespace winnow::learn
