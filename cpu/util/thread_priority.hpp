#pragma once
/// Lowering the CPU priority of the calling thread (Linux: nice values are per thread).
/// The serving threads use it so that, on a machine short of cores, the single writer that
/// applies events keeps its share of the CPU under request load.
namespace freshrec {

/// Adds `delta` (0..19) to the calling thread's nice value. Returns false (and changes
/// nothing) where the system refuses; lowering one's own priority needs no privilege.
bool lower_current_thread_priority(int delta) noexcept;

}  // namespace freshrec
