import numpy as np
import pytest
import torch

from task.data import load_dataset
from task.errors import ConfigError
from task.models import build_model
from task.training import compute_gradient, evaluate, resolve_device

CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # two shared cores: one thread per process is several times faster than two
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None)


def test_gradient_matches_autograd_and_updates_bn_statistics(digits):
    torch.manual_seed(0)
    model = build_model("cnn", 10, 1, 8)
    x, y = digits.x_train[:16], digits.y_train[:16]
    reference = build_model("cnn", 10, 1, 8)
    reference.load_state_dict(model.state_dict())
    grads, loss, buffers = compute_gradient(model, x, y, CPU)
    expected = torch.nn.functional.cross_entropy(
        reference.train()(torch.tensor(x)), torch.tensor(y)
    )
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert list(grads) == [name for name, _ in reference.named_parameters()]
    for name, p in reference.named_parameters():
        assert grads[name].dtype == np.float32
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert set(buffers) == {name for name, _ in reference.named_buffers()}
    assert buffers["0.1.num_batches_tracked"] == 1
    # the first BN layer's input is the first convolution's output on the batch
    conv = reference[0][0](torch.tensor(x)).detach()
    np.testing.assert_allclose(buffers["0.1.running_mean"], conv.mean((0, 2, 3)), rtol=1e-5)
    variance = conv.var((0, 2, 3), unbiased=False)
    np.testing.assert_allclose(buffers["0.1.running_var"], variance, rtol=1e-4)
    assert buffers["0.1.running_mean"].dtype == np.float32


def test_chunked_gradient_equals_the_full_batch_gradient_without_batchnorm(digits):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))  # fmt: skip
    x, y = digits.x_train[:100], digits.y_train[:100]
    full, full_loss, _ = compute_gradient(model, x, y, CPU)
    chunked, chunked_loss, _ = compute_gradient(model, x, y, CPU, chunk=30)  # 30, 30, 30, 10
    assert chunked_loss == pytest.approx(full_loss, rel=1e-6)
    for name, value in full.items():
        np.testing.assert_allclose(chunked[name], value, rtol=1e-5, atol=1e-7)


def test_chunked_batch_reports_the_whole_batchs_bn_statistics(digits):
    torch.manual_seed(0)
    model = build_model("cnn", 10, 1, 8)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = digits.x_train[:100], digits.y_train[:100]
    _, _, chunked = compute_gradient(model, x, y, CPU, 40)
    assert chunked["0.1.num_batches_tracked"] == 3  # chunks of 40, 40, 20
    model.load_state_dict(state)
    _, _, whole = compute_gradient(model, x, y, CPU)
    # exact at the first BN layer; a deeper one sees inputs normalised per chunk (or device)
    for name in ("0.1.running_mean", "0.1.running_var"):
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-4, atol=1e-6)


def test_evaluate_reports_loss_and_accuracy(digits):
    model = build_model("cnn", 10, 1, 8)
    loss, accuracy = evaluate(model, digits.x_test, digits.y_test, CPU, batch_size=64)
    assert loss == pytest.approx(np.log(10), rel=0.2)  # untrained: near-uniform predictions
    assert 0.0 <= accuracy <= 0.3


def test_sgd_on_gradients_learns_digits(digits):
    """Sanity check: 200 plain SGD steps of batch 100 reach > 95% test accuracy (99% seen)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model("cnn", 10, 1, 8)
    for _ in range(200):
        idx = rng.choice(len(digits.x_train), 100, replace=False)
        grads, _, _ = compute_gradient(model, digits.x_train[idx], digits.y_train[idx], CPU)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p -= 0.1 * torch.from_numpy(grads[name])
    _, accuracy = evaluate(model, digits.x_test, digits.y_test, CPU)
    assert accuracy > 0.95


def test_resolve_device():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match=r"^device: unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^device: 'cuda' requested"):
        resolve_device("cuda")
