import cv2
import numpy as np
import pytest
import torch

from neo.rf.spectrogram import Spectrogram, area_weights


def tone(freq_cycles_per_sample: float, n: int = 64 * 40) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64)
    return torch.exp(2j * torch.pi * freq_cycles_per_sample * t).to(torch.complex64)


@pytest.mark.parametrize(("freq", "row"), [(0.25, 15), (-0.25, 47), (0.0, 31), (0.5 - 1 / 64, 0)])
def test_tone_orientation(freq, row):
    # row r shows frequency fs/2 - (r + 1) * fs/nfft: +f is in the upper half
    spec = Spectrogram(nfft=64, hop=32, image_size=(64, 30))
    power = spec.power(tone(freq))
    assert power.shape == (64, 30)
    assert int(power.mean(dim=1).argmax()) == row


def test_tone_row_with_frequency_reduction():
    spec = Spectrogram(nfft=64, hop=32, image_size=(16, 30))
    # bin 16 natural (0.25 fs) -> flipped position 15 -> group row 3 (rows of 4 bins)
    assert int(spec.power(tone(0.25)).mean(dim=1).argmax()) == 3
    assert int(spec.power(tone(-0.25)).mean(dim=1).argmax()) == 11


@pytest.mark.parametrize("size", [(16, 20), (13, 17), (64, 79), (32, 39)])
def test_area_resize_equals_cv2_inter_area_of_full_power(size):
    torch.manual_seed(0)
    x = torch.randn(64 * 40, dtype=torch.complex64)
    nfft, hop = 64, 32
    window = torch.hann_window(nfft)
    stft = torch.stft(x, nfft, hop, window=window, center=False, return_complex=True)
    full = stft.abs().double() ** 2 / (window.double() ** 2).sum()
    full = torch.flip(torch.fft.fftshift(full, dim=0), [0]).numpy()
    expected = cv2.resize(full, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    got = Spectrogram(nfft, hop, image_size=size, block_frames=7).power(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_noise_floor_is_0_db():
    torch.manual_seed(0)
    x = torch.randn(64 * 400, dtype=torch.complex64)  # unit power per sample
    assert float(Spectrogram(64, 32, image_size=8).power(x).mean()) == pytest.approx(1.0, rel=0.05)


def test_area_weights_sum_to_one():
    for n_in, n_out in [(1952, 1024), (10, 3), (3, 10), (7, 7)]:
        _, w = area_weights(n_in, n_out)
        np.testing.assert_allclose(w.sum(axis=0), 1.0)


def test_image_range_and_fixed_levels():
    spec = Spectrogram(64, 32, image_size=32, floor_db=-10.0, ceiling_db=10.0)
    img = spec(tone(0.1) * 10 + torch.randn(64 * 40, dtype=torch.complex64) * 0.01)
    assert img.shape == (32, 32) and img.dtype == torch.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    assert float(img.max()) == 1.0  # the tone is far above the ceiling


def test_min_range_keeps_noise_dark():
    torch.manual_seed(0)
    img = Spectrogram(64, 32, image_size=32, min_range_db=30.0)(
        torch.randn(64 * 40, dtype=torch.complex64)
    )
    assert float(img.mean()) < 0.3


def test_real_input_and_too_short():
    spec = Spectrogram(64, 32, image_size=16)
    assert spec(torch.randn(640)).shape == (16, 16)
    with pytest.raises(ValueError, match="at least nfft"):
        spec(torch.zeros(10, dtype=torch.complex64))


def test_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        Spectrogram(window="kaiser")
    with pytest.raises(ValueError, match="ceiling_db"):
        Spectrogram(64, 32, image_size=8, floor_db=5.0, ceiling_db=0.0)(tone(0.1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    x = torch.randn(4096 * 8, dtype=torch.complex64)
    spec = Spectrogram(512, 256, image_size=(64, 50))
    cpu = spec.power(x)
    gpu = spec.to("cuda").power(x.cuda()).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-3)


def test_thread_pool_matches_serial():
    torch.manual_seed(1)
    x = torch.randn(64 * 100, dtype=torch.complex64)
    serial = Spectrogram(64, 32, image_size=(32, 40), block_frames=8, cpu_threads=1)(x)
    pooled = Spectrogram(64, 32, image_size=(32, 40), block_frames=8, cpu_threads=2)(x)
    torch.testing.assert_close(pooled, serial)
