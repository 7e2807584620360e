"""The seed's reference HHT (seeds/001, "Real HHT Transformation"), kept verbatim.

It is the oracle the vectorised transform is tested against (identical output for the same
IMFs) and the baseline python -m bench.hht times. The package itself never imports it.
"""

import numpy as np


def compute_hht_matrix(signal: np.ndarray, fs: float, matrix_size: int = 256, max_imf: int = 10) -> np.ndarray:
    try:
        from PyEMD import EMD
        from scipy.signal import hilbert
    except ImportError:
        raise ImportError("Please install PyEMD and scipy: pip install PyEMD scipy")  # noqa: B904

    # Perform EMD
    emd = EMD()
    imfs = emd(signal, max_imf=max_imf)

    # Compute Hilbert transform for each IMF
    n_samples = len(signal)
    t = np.arange(n_samples) / fs

    # Initialize time-frequency matrix
    freq_bins = np.linspace(0, fs / 2, matrix_size)  # noqa: F841 (unused in the seed too)
    time_bins = np.linspace(0, t[-1], matrix_size)  # noqa: F841
    hht_matrix = np.zeros((matrix_size, matrix_size))

    for imf in imfs:
        # Compute analytic signal
        analytic = hilbert(imf)
        amplitude = np.abs(analytic)
        phase = np.unwrap(np.angle(analytic))

        # Compute instantaneous frequency
        inst_freq = np.diff(phase) / (2 * np.pi) * fs
        inst_freq = np.concatenate([inst_freq, [inst_freq[-1]]])
        inst_freq = np.clip(inst_freq, 0, fs / 2)

        # Map to time-frequency matrix
        for i, (ti, fi, ai) in enumerate(zip(t, inst_freq, amplitude)):  # noqa: B007, B905
            t_idx = int(ti / t[-1] * (matrix_size - 1))
            f_idx = int(fi / (fs / 2) * (matrix_size - 1))

            t_idx = np.clip(t_idx, 0, matrix_size - 1)
            f_idx = np.clip(f_idx, 0, matrix_size - 1)

            hht_matrix[f_idx, t_idx] += ai

    # Normalize
    if hht_matrix.max() > 0:
        hht_matrix = hht_matrix / hht_matrix.max()

    return hht_matrix.astype(np.float32)
