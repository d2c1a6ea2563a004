#pragma once
// How kernels use threads.
//
// A model pass runs as one team of threads (SPMD, see Transformer): every thread executes the same
// layer code, and each kernel does the calling thread's share of its rows or items. So a pass is
// one parallel region, not one per kernel, and the GEMMs inside it are single-threaded calls on a
// thread's rows. A kernel that reads rows other threads wrote starts with a barrier; one that
// reduces over every row (weight gradients, column sums) is fenced by barriers on both sides, so
// the rows it reads are complete and nobody overwrites them while it reads.
//
// Called outside a parallel region, a kernel does all of the work: in a team of its own when the
// work is worth threads (a fork and a barrier cost microseconds when cores are free, a scheduler
// time slice when they are not), else on the calling thread, whose BLAS calls may then use BLAS's
// own threads.
//
// Which thread computes an element never changes how most of our kernels compute it (rows are
// independent, and a reduction gives each output element to one thread, which sums in a fixed
// order). Two exceptions: a team of another size splits a GEMM's rows at other offsets, and
// OpenBLAS rounds a row by where it falls in its register tile; and the small weight gradients sum
// per-thread partials (linear_weight_grad), whose rows depend on the team's size. So the same
// thread count gives the same bits, and other counts agree to rounding (docs/ARCHITECTURE.md,
// Determinism).
#include <omp.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace kvtie {

constexpr int64_t kParallelMinWork = int64_t{1} << 15;

inline bool worth_threads(int64_t work) { return work >= kParallelMinWork; }

struct Span {
  int64_t begin, end;
};

// This thread's contiguous share of [0, n) in its team (all of it for a team of one).
inline Span team_share(int64_t n) {
  const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
  return {n * t / k, n * (t + 1) / k};
}

// A barrier for the teams of run_team. libgomp's makes a futex syscall whether or not a thread
// sleeps, ~1.4 µs on the 2-core VM, where a decode step at batch 1 crosses ~60 barriers in ~1.5 ms;
// this one spins, and after 1024 pauses (20 µs there) yields its core between looks, so that a
// team larger than the free cores still gets on.
class SpinBarrier {
 public:
  void wait(int team) {
    const unsigned gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == team - 1) {  // the last one in releases the rest
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(gen + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == gen; spins++) {
      if (spins < kSpins)
        cpu_relax();
      else
        std::this_thread::yield();
    }
  }

 private:
  static constexpr int kSpins = 1 << 10;
  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> generation_{0};
};

// The barrier of the run_team team this thread is in, and that team's nesting level.
struct TeamBarrierSlot {
  SpinBarrier* barrier = nullptr;
  int level = 0;
};
inline thread_local TeamBarrierSlot t_team_barrier;

// Waits for the rest of the team (nothing to wait for in a team of one or outside a region).
inline void team_barrier() {
  const int team = omp_get_num_threads();
  if (team <= 1) return;
  if (t_team_barrier.barrier && t_team_barrier.level == omp_get_level()) return t_team_barrier.barrier->wait(team);
#pragma omp barrier
}

// body(begin, end) over the calling thread's share of [0, n): inside a parallel region every
// thread of the team must call it; outside any region it covers all of [0, n), in a team of its own when
// `work` (elements touched) is worth threads.
template <class F>
void team_for(int64_t n, int64_t work, F&& body) {
  if (omp_get_level() > 0) {  // in a team, even a team of one (a region that is not active)
    const Span s = team_share(n);
    body(s.begin, s.end);
    return;
  }
  // Not `parallel if (...)`: libgomp ends even an inactive region with a futex syscall, ~1.2 µs
  // on the 2-core VM, where a residual add of 512 floats takes ~30 ns.
  if (!worth_threads(work)) return body(int64_t{0}, n);
#pragma omp parallel
  {
    const Span s = team_share(n);
    body(s.begin, s.end);
  }
}

// Runs pass() on every thread of a new team of `threads`: one model pass, one parallel region.
// Nothing in a pass may throw: a thread that left would leave the others waiting at a barrier.
template <class F>
void run_team(int threads, F&& pass) {
  if (threads <= 1) {  // still a region, if an inactive one: its kernels stay on this thread
#pragma omp parallel if (false)
    pass();
    return;
  }
  SpinBarrier barrier;
#pragma omp parallel num_threads(threads)
  {
    const TeamBarrierSlot outer = t_team_barrier;
    t_team_barrier = {&barrier, omp_get_level()};
    pass();
    t_team_barrier = outer;
  }
}

// team_for for a reduction that reads rows every thread wrote: fenced by barriers inside a team.
template <class F>
void team_reduce(int64_t n, int64_t work, F&& body) {
  team_barrier();
  team_for(n, work, body);
  team_barrier();
}

}  // namespace kvtie
