"""Which CPUs get exact 8-bit products (facecue.cpu): the flags read here, and the rule."""

import platform

import pytest

from facecue.cpu import cpu_flags, cpu_name, exact_int8


def test_flags_of_this_machine_are_read():
    flags = cpu_flags()
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the x86 flag names below are only on x86")
    assert flags and {"sse2", "fpu"} <= flags  # every x86-64 CPU has these
    assert exact_int8() == bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


@pytest.mark.parametrize(("machine", "flags", "exact"), [
    ("x86_64", {"sse2", "avx", "avx2", "fma"}, False),  # AVX2 only: VPMADDUBSW saturates
    ("x86_64", {"avx2", "avx512f", "avx512bw"}, False),  # AVX-512 without VNNI too
    ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, True),
    ("x86_64", {"avx2", "avx_vnni"}, True),  # Alder Lake and later laptops
    ("AMD64", {"avx2", "avx512vnni"}, True),  # macOS sysctl spelling
    ("x86_64", set(), False),  # flags unknown: the safe side
    ("aarch64", set(), True),
    ("arm64", set(), True),
])
def test_exact_int8_rule(machine, flags, exact):
    assert exact_int8(machine, flags) is exact


def test_cpu_name_is_read():
    name = cpu_name()
    assert name and "\n" not in name
    if platform.system() == "Linux" and platform.machine().lower() in ("x86_64", "amd64"):
        with open("/proc/cpuinfo") as f:
            assert name in f.read()
