// Fused window packing: per-modality frame buffers -> the engine's input tensors, in one
// launch for all modalities and all segments of a batch.
//
// Semantics are exactly those of hrlf/kernels/pack.py::pack_segments_numpy (the reference
// the CPU path, training and the tests use). For segment b starting at t0 = starts[b]:
//   * the window's frames are [range[2b], range[2b+1]) of the modality's uploaded slice
//     (the host computes them with the reference's searchsorted: t0 <= t < t0 + window_s);
//   * a frame's slot is min(floor((t - t0) * rate_hz + 1e-6), n_frames - 1), each
//     operation rounded separately as numpy does (no FMA contraction);
//   * a frame with any NaN/Inf value is ignored;
//   * a slot holds the FP32 mean of its finite frames, z-normalized with mean/std, mask 1;
//     a slot with no finite frame and every padding slot (n_frames <= s < out_frames) is
//     0 with mask 0.
//
// Launch layout: one warp per output slot. Slots are numbered modality-major, then
// segment, then frame: warp w -> modality m (the last with slot_begin <= w), segment
// b = r / out_frames, slot s = r % out_frames with r = w - slot_begin. The grid is 1-D with
// HRLF_WARPS_PER_BLOCK warps per block and grid-strides over slots, so any grid size is
// correct. Inside a warp: times are ascending, so the slot index is non-decreasing along
// the window and slot s owns a contiguous run [a, e) of frames, found with two binary
// searches using the exact slot formula. Lanes then stride over feature columns: a
// frame's finiteness is a warp vote over its row, sums are FP32 registers
// (HRLF_COLS_PER_LANE columns per lane per pass; wider rows take more passes). Row reads
// and output writes are coalesced along the feature axis.
//
// No #include: NVRTC compiles this file as is (cuda_pack.py), and nvcc compiles it in CI.

#define HRLF_MAX_MODALITIES 4
#define HRLF_WARPS_PER_BLOCK 8
#define HRLF_COLS_PER_LANE 8
#define HRLF_SLOT_EPS 1e-6
#define HRLF_FULL_MASK 0xffffffffu

// One modality. Host mirror: MOD_DTYPE in cuda_pack.py (tests compare the layouts).
struct HrlfModality {
    const float* frames;    // (n, dim) FP32 rows of the uploaded slice
    const double* times;    // (n,) seconds, ascending
    const int* range;       // (n_seg, 2) window [lo, hi) into the slice
    const float* mean;      // (dim,)
    const float* std;       // (dim,)
    void* out;              // (n_seg, out_frames, dim) float or half
    float* mask;            // (n_seg, out_frames)
    double rate_hz;
    int dim;
    int n_frames;           // slots that can hold frames
    int out_frames;         // padded slot count (>= n_frames)
    int slot_begin;         // first global slot (warp) index of this modality
};

// All of one launch. Host mirror: ARGS_DTYPE in cuda_pack.py.
struct HrlfPackArgs {
    HrlfModality mod[HRLF_MAX_MODALITIES];
    const double* starts;   // (n_seg,) window start times
    int n_mod;
    int n_seg;
    int total_slots;        // sum over modalities of n_seg * out_frames
};

static_assert(sizeof(HrlfModality) == 80, "HrlfModality layout changed: update MOD_DTYPE");
static_assert(sizeof(HrlfPackArgs) == 344, "HrlfPackArgs layout changed: update ARGS_DTYPE");
#ifndef __CUDACC_RTC__  // NVRTC has no offsetof; nvcc (CI) checks the field offsets
static_assert(__builtin_offsetof(HrlfModality, rate_hz) == 56, "HrlfModality.rate_hz moved");
static_assert(__builtin_offsetof(HrlfModality, dim) == 64, "HrlfModality.dim moved");
static_assert(__builtin_offsetof(HrlfModality, slot_begin) == 76, "HrlfModality.slot_begin moved");
static_assert(__builtin_offsetof(HrlfPackArgs, starts) == 320, "HrlfPackArgs.starts moved");
static_assert(__builtin_offsetof(HrlfPackArgs, total_slots) == 336, "HrlfPackArgs.total_slots moved");
#endif

__device__ __forceinline__ bool hrlf_finite(float v) {
    return (__float_as_uint(v) & 0x7f800000u) != 0x7f800000u;
}

// floor((t - t0) * rate + eps) with separately rounded operations, like numpy.
__device__ __forceinline__ double hrlf_raw_slot(double t, double t0, double rate) {
    return floor(__dadd_rn(__dmul_rn(__dsub_rn(t, t0), rate), HRLF_SLOT_EPS));
}

// First index in [lo, hi) whose raw slot is >= s (hi if none); raw slots are
// non-decreasing in the index because times are ascending and rounding is monotone.
__device__ int hrlf_first_slot_at_least(const double* times, int lo, int hi, double t0,
                                        double rate, int s) {
    const double target = (double)s;
    while (lo < hi) {
        const int mid = lo + ((hi - lo) >> 1);
        if (hrlf_raw_slot(times[mid], t0, rate) >= target) hi = mid; else lo = mid + 1;
    }
    return lo;
}

// Warp vote: every value of the row is finite. All 32 lanes must call it.
__device__ __forceinline__ bool hrlf_row_finite(const float* row, int dim, int lane) {
    bool ok = true;
    for (int j = lane; j < dim; j += 32) ok = ok && hrlf_finite(row[j]);
    return __all_sync(HRLF_FULL_MASK, ok);
}

__device__ __forceinline__ unsigned short hrlf_to_half(float x) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));  // round to nearest even, as numpy
    return h;
}

// One slot (modality md, segment b, slot s), computed by one whole warp.
template <bool kHalf>
__device__ void hrlf_pack_slot(const HrlfModality& md, double t0, int b, int s, int lane) {
    const int dim = md.dim;
    int a = 0, e = 0;
    if (s < md.n_frames) {
        const int lo = md.range[2 * b], hi = md.range[2 * b + 1];
        a = (s == 0) ? lo : hrlf_first_slot_at_least(md.times, lo, hi, t0, md.rate_hz, s);
        // the last slot also takes frames whose raw slot is beyond it (the clip)
        e = (s == md.n_frames - 1)
                ? hi : hrlf_first_slot_at_least(md.times, a, hi, t0, md.rate_hz, s + 1);
    }
    const size_t row = (size_t)b * md.out_frames + s;
    int count = 0;
    for (int c0 = 0; c0 < dim; c0 += 32 * HRLF_COLS_PER_LANE) {
        float acc[HRLF_COLS_PER_LANE];
#pragma unroll
        for (int k = 0; k < HRLF_COLS_PER_LANE; ++k) acc[k] = 0.f;
        count = 0;
        for (int i = a; i < e; ++i) {
            const float* f = md.frames + (size_t)i * dim;
            if (!hrlf_row_finite(f, dim, lane)) continue;  // warp-uniform branch
            ++count;
#pragma unroll
            for (int k = 0; k < HRLF_COLS_PER_LANE; ++k) {
                const int j = c0 + k * 32 + lane;
                if (j < dim) acc[k] += f[j];
            }
        }
#pragma unroll
        for (int k = 0; k < HRLF_COLS_PER_LANE; ++k) {
            const int j = c0 + k * 32 + lane;
            if (j >= dim) break;
            const float v = count ? (acc[k] / (float)count - md.mean[j]) / md.std[j] : 0.f;
            if (kHalf) static_cast<unsigned short*>(md.out)[row * dim + j] = hrlf_to_half(v);
            else static_cast<float*>(md.out)[row * dim + j] = v;
        }
    }
    if (lane == 0) md.mask[row] = count > 0 ? 1.f : 0.f;
}

template <bool kHalf>
__device__ void hrlf_pack(const HrlfPackArgs& p) {
    const int lane = threadIdx.x & 31;
    const int warps_per_grid = gridDim.x * (blockDim.x >> 5);
    // w is the same for all lanes of a warp, so the loop and every vote are warp-uniform
    for (int w = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); w < p.total_slots;
         w += warps_per_grid) {
        int m = 0;
        while (m + 1 < p.n_mod && w >= p.mod[m + 1].slot_begin) ++m;
        const HrlfModality& md = p.mod[m];
        const int r = w - md.slot_begin;
        const int b = r / md.out_frames;
        hrlf_pack_slot<kHalf>(md, p.starts[b], b, r - b * md.out_frames, lane);
    }
}

// __grid_constant__: the argument block stays in the constant bank even though it is
// indexed with a run-time modality (no per-thread copy).
extern "C" __global__ void __launch_bounds__(HRLF_WARPS_PER_BLOCK * 32)
hrlf_pack_f32(const __grid_constant__ HrlfPackArgs p) {
    hrlf_pack<false>(p);
}

extern "C" __global__ void __launch_bounds__(HRLF_WARPS_PER_BLOCK * 32)
hrlf_pack_f16(const __grid_constant__ HrlfPackArgs p) {
    hrlf_pack<true>(p);
}
