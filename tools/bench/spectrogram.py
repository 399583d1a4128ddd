"""Real-time factor of IQ -> normalised spectrogram image, against plain torch.stft + dB.

Usage: uv run python tools/bench/spectrogram.py [--sample-rate 20e6] [--chunk-s 0.2] [--repeats 7]

Both pipelines run on the same 200 ms of 20 MS/s complex IQ (4,000,000 samples; nfft 4096, hop
2048 -> 1952 frames x 4096 bins). The baseline stops at a full-resolution dB array (it does not
even resize or normalise); neo's Spectrogram goes all the way to the 1024x1024 image in [0, 1].
Real-time factor = signal duration / best wall time over the repeats. Target: >= 5x on 2 CPU cores.
The CPU-time column (process time of all threads) is less sensitive to other processes sharing
the cores; wall times on a busy machine can be several times worse than on an idle one.
"""

import argparse
import time

import torch

from neo.rf.spectrogram import Spectrogram

TARGET = 5.0


def best_time(fn, repeats: int, sync=lambda: None) -> tuple[float, float]:
    """Best wall time and best process CPU time (all threads) of one call, in seconds."""
    fn()
    sync()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=float, default=20e6)
    parser.add_argument("--chunk-s", type=float, default=0.2)
    parser.add_argument("--nfft", type=int, default=4096)
    parser.add_argument("--hop", type=int, default=2048)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    n = round(args.sample_rate * args.chunk_s)
    iq = torch.randn(n, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    window = torch.hann_window(args.nfft)
    spec = Spectrogram(args.nfft, args.hop, image_size=args.size)

    def baseline(x=iq, w=window):
        s = torch.stft(x, args.nfft, args.hop, window=w, center=False, return_complex=True)
        return 10 * torch.log10(s.abs() ** 2 + 1e-12)

    all_threads = torch.get_num_threads()
    print(
        f"{n} samples = {args.chunk_s * 1e3:.0f} ms at {args.sample_rate / 1e6:g} MS/s, "
        f"nfft {args.nfft}, hop {args.hop}, image {args.size}x{args.size}, "
        f"{all_threads} CPU threads available"
    )
    rows = []
    for threads in sorted({1, all_threads}):
        torch.set_num_threads(threads)
        rows.append((f"torch.stft + dB (cpu, {threads} thr)", best_time(baseline, args.repeats)))
        rows.append(
            (f"neo Spectrogram (cpu, {threads} thr)", best_time(lambda: spec(iq), args.repeats))
        )
    torch.set_num_threads(all_threads)
    if torch.cuda.is_available():
        x_gpu, w_gpu, spec_gpu = iq.cuda(), window.cuda(), spec.to("cuda")
        sync = torch.cuda.synchronize
        rows.append(
            (
                "torch.stft + dB (cuda)",
                best_time(lambda: baseline(x_gpu, w_gpu), args.repeats, sync),
            )
        )
        rows.append(
            ("neo Spectrogram (cuda)", best_time(lambda: spec_gpu(x_gpu), args.repeats, sync))
        )
    print(f"{'':38s} {'wall':>8s}     {'real time':>9s}   {'CPU time':>8s}")
    for name, (seconds, cpu) in rows:
        print(
            f"{name:38s} {seconds * 1e3:8.1f} ms  {args.chunk_s / seconds:7.1f}x   "
            f"{cpu * 1e3:8.1f} ms"
        )
    by_name = {name: wall for name, (wall, _) in rows}
    for threads in sorted({1, all_threads}):
        ratio = (
            by_name[f"torch.stft + dB (cpu, {threads} thr)"]
            / by_name[f"neo Spectrogram (cpu, {threads} thr)"]
        )
        print(f"speed-up over torch.stft + dB at {threads} thread(s): {ratio:.1f}x")
    rtf = args.chunk_s / by_name[f"neo Spectrogram (cpu, {all_threads} thr)"]
    verdict = "met" if rtf >= TARGET else "NOT met"
    print(
        f"target >= {TARGET:g}x real time on 2 CPU cores: {rtf:.1f}x with {all_threads} "
        f"thread(s) -> {verdict}"
    )


if __name__ == "__main__":
    main()
