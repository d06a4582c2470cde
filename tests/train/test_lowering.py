"""The release-size train steps as an accelerator would run them, checked on the CPU by lowering only.

Ptrain4, bf16, batch 64: IMC on 128^2 crops and HR on 256^2 patches, lowered for CUDA from abstract
inputs (``jax.eval_shape`` state, ``ShapeDtypeStruct`` batches; nothing is compiled or run). The StableHLO
text says which convolutions run in bf16, whether a per-tap matmul kernel gradient is left, and whether
the state is donated; XLA's cost analysis of the same step lowered for the CPU gives its FLOPs.
"""

import collections
import re

import jax
import jax.numpy as jnp
import pytest

from mantra_jax.models.config import model_from_config
from mantra_jax.models.compute import for_platform
from mantra_jax.train import sharding
from mantra_jax.train.flops import train_flops_per_pixel
from mantra_jax.train.optimizer import adam
from mantra_jax.train.state import create_train_state, init_variables
from mantra_jax.train.step import make_train_step
from mantra_jax.train.tasks import imc_task, localisation_task

B = 64
CONV = re.compile(r"stablehlo\.convolution.*?:\s*\(tensor<([^>]+)>, tensor<([^>]+)>\) -> tensor<([^>]+)>")

pytestmark = pytest.mark.slow  # ~25 s: four traces of the release-size network


def _dtype(t: str) -> str:
    return t.rsplit("x", 1)[-1]


def _lower(kind: str, platform: str, size: int, batch: int = B):
    cfg = ({"kind": "mantranet", "variant": "ptrain4", "dtype": "bfloat16"} if kind == "hr" else
           {"kind": "imc", "variant": "ptrain4", "num_classes": 385, "dtype": "bfloat16"})
    model = for_platform(model_from_config(cfg), platform)
    task = localisation_task() if kind == "hr" else imc_task()
    tx = adam()
    state = jax.eval_shape(lambda: create_train_state(init_variables(model, 0), tx, 0))
    batch_spec = {"image": jax.ShapeDtypeStruct((batch, size, size, 3), jnp.uint8)}
    if kind == "hr":
        batch_spec.update(mask=jax.ShapeDtypeStruct((batch, size, size, 1), jnp.uint8),
                          kind=jax.ShapeDtypeStruct((batch,), jnp.int32))
    else:
        batch_spec["label"] = jax.ShapeDtypeStruct((batch,), jnp.int32)
    step = jax.jit(make_train_step(model, task.loss_fn, tx), donate_argnums=0)
    traced = step.trace(state, batch_spec)
    return traced, (traced.lower(lowering_platforms=("cuda",)) if platform == "cuda" else traced.lower())


@pytest.fixture(scope="module", params=[("hr", 256), ("imc", 128)], ids=["hr", "imc"])
def gpu_step(request):
    kind, size = request.param
    traced, lowered = _lower(kind, "cuda", size)
    text = lowered.as_text()
    cost = traced.lower().cost_analysis()  # the same step (XLA kernel gradients) lowered for the CPU
    cost = cost[0] if isinstance(cost, list) else cost
    return kind, size, text, float(cost["flops"]), len(jax.tree.leaves(traced.args_info[0]))


def test_trunk_convolutions_are_bf16_and_the_rest_float32(gpu_step):
    kind, size, text, _, _ = gpu_step
    convs = CONV.findall(text)
    by_dtype = collections.Counter()
    for lhs, rhs, out in convs:
        dtypes = {_dtype(lhs), _dtype(rhs), _dtype(out)}
        assert len(dtypes) == 1, (lhs, rhs, out)  # no mixed-precision convolution
        by_dtype[dtypes.pop()] += 1
        first_layer = rhs.startswith("5x5x3x16x")  # the forward of b1c1 (4 plain + 9 SRM + 3 Bayar)
        trunk = re.fullmatch(r"3x3x(\d+)x(\d+)x\w+", rhs) is not None
        if first_layer:
            assert _dtype(rhs) == "f32", (lhs, rhs)
        if trunk:
            assert _dtype(rhs) == "bf16", (lhs, rhs)
        if re.fullmatch(r"(1x1x256x64|7x7x64x32|7x7x8x32|7x7x8x1)xf32", rhs):  # LADN: outlierTrans, ConvLSTM, pred
            assert kind == "hr"
    # 12 trunk layers (b1c2 .. transform) x forward, input gradient, kernel gradient, all bf16
    assert by_dtype["bf16"] == 36
    # first layer forward and kernel gradient (no input gradient); HR adds the LADN's (outlierTrans, ConvLSTM
    # input and recurrent convolutions in loop bodies, pred; forward and gradients: 21 with jax 0.12, 12
    # with jax 0.10, whose loops are laid out differently)
    assert by_dtype["f32"] == 2 if kind == "imc" else by_dtype["f32"] >= 2 + 12


def test_no_per_tap_matmul_kernel_gradient_off_the_cpu(gpu_step):
    kind, _, text, _, _ = gpu_step
    dots = re.findall(r"stablehlo\.dot_general.*?:\s*\(tensor<([^>]+)>, tensor<([^>]+)>\)", text)
    # the only matrix products left: the IMC head's fused mean, (B, 9 x 256) x (9 x 256, 385), and its gradients
    assert all("385" in a or "385" in b for a, b in dots), dots
    assert kind == "imc" or not dots


def test_cpu_target_keeps_the_per_tap_matmul_kernel_gradient():
    # the same model resolved for the CPU (where it is faster) does have the per-tap products: the check
    # above can fail
    _, lowered = _lower("hr", "cpu", 32, batch=1)
    text = lowered.as_text()
    assert len(re.findall(r"stablehlo\.dot_general", text)) >= 9


def test_the_state_is_donated(gpu_step):
    _, _, text, _, leaves = gpu_step
    # every leaf the step changes (params, batch stats, Adam moments, step); leaves it returns unchanged
    # (the raw PRNG key, plateau fields) are passed through instead
    assert text.count("tf.aliasing_output") + text.count("jax.buffer_donor") >= leaves - 5


def test_project_jit_donates_the_state(toy_model):
    mesh = sharding.make_mesh()
    tx = adam()
    state = jax.eval_shape(lambda: create_train_state(init_variables(toy_model, 0), tx, 0))
    batch = {"image": jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32),
             "mask": jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32), "kind": jax.ShapeDtypeStruct((2,), jnp.int32)}
    step = sharding.jit_train_step(make_train_step(toy_model, localisation_task().loss_fn, tx), mesh)
    text = step.lower(state, batch).as_text()
    assert text.count("tf.aliasing_output") + text.count("jax.buffer_donor") >= len(jax.tree.leaves(state))


def test_xla_flops_per_pixel_match_the_analytic_count(gpu_step, record_property):
    kind, size, _, flops, _ = gpu_step
    per_pixel = flops / (B * size * size)
    analytic = train_flops_per_pixel("ptrain4", "mantranet" if kind == "hr" else "imc")
    record_property(f"{kind}_xla_flops_per_pixel", per_pixel)
    print(f"{kind}: XLA {per_pixel / 1e6:.2f} MFLOP/pixel, analytic {analytic / 1e6:.2f}")
    assert per_pixel == pytest.approx(analytic, rel=0.02)
