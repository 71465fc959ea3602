"""Native kernels or PTX compilation, decided from a framework's architecture list (no GPU needed)."""

from dlbench.frameworks.cuda_arch import compiles_from_ptx, kernel_binaries

TF_LIKE = ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]


def test_a_cubin_of_the_same_major_and_a_lower_minor_runs_natively() -> None:
    assert kernel_binaries((8, 6), TF_LIKE) == "native sm_80"
    assert kernel_binaries((8, 9), TF_LIKE) == "native sm_89"
    assert not compiles_from_ptx(kernel_binaries((7, 5), TF_LIKE))


def test_a_newer_gpu_without_cubins_compiles_the_newest_fitting_ptx() -> None:
    description = kernel_binaries((10, 0), TF_LIKE)
    assert description.startswith("PTX compute_90") and compiles_from_ptx(description)
    assert "10.0" in description


def test_arch_specific_cubins_only_run_on_their_exact_capability() -> None:
    assert kernel_binaries((9, 0), ["sm_90a"]) == "native sm_90a"
    assert kernel_binaries((9, 1), ["sm_90a"]) == "none for 9.1"


def test_no_fitting_code_at_all_is_said_so() -> None:
    assert kernel_binaries((5, 2), TF_LIKE) == "none for 5.2"
    assert kernel_binaries((8, 0), ["garbage", ""]) == "none for 8.0"
