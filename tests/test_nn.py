"""tinynet.nn: module registration and naming, repr, modes, state dicts, layers, init, and
the Linear + activation fusion in Sequential."""

import copy
import math
import pickle

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn
from tinynet.nn import init

F = nn.functional


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(4, 2)
        self.scale = nn.Parameter(tn.ones(2))
        self.register_buffer("running", tn.zeros(2))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def xor_model(dtype=None):
    return nn.Sequential(nn.Linear(2, 4, dtype=dtype), nn.Sigmoid(), nn.Linear(4, 1, dtype=dtype),
                         nn.Sigmoid())


# ---- registration and naming ---------------------------------------------------------------


def test_attributes_register_parameters_and_modules_in_assignment_order():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == [
        "scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"
    ]
    assert list(m._modules) == ["fc1", "act", "fc2"]
    assert [n for n, _ in m.named_buffers()] == ["running"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "Tanh", "Linear"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())


def test_parameter_order_is_the_same_in_every_process():
    # Insertion-ordered dicts: the order must not depend on hashing (ids, hash seeds).
    orders = {tuple(n for n, _ in TwoLayer().named_parameters()) for _ in range(5)}
    assert len(orders) == 1


def test_sequential_children_are_named_by_position():
    m = xor_model()
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_nested_names_are_dotted_paths():
    outer = nn.Sequential(xor_model(), nn.Linear(1, 1))
    assert [n for n, _ in outer.named_parameters()] == [
        "0.0.weight", "0.0.bias", "0.2.weight", "0.2.bias", "1.weight", "1.bias"
    ]
    assert outer.get_submodule("0.2") is outer[0][2]


def test_shared_parameter_is_listed_once():
    m = nn.Module()
    m.a = nn.Linear(2, 2)
    m.b = m.a
    assert len(list(m.parameters())) == 2
    assert len(list(m.modules())) == 2


def test_parameter_assigned_before_init_raises():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tn.ones(2))
            super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


def test_plain_tensor_assigned_to_a_parameter_name_raises():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Parameter or None expected"):
        lin.weight = tn.ones(2, 2)


def test_assigning_none_keeps_the_name_registered_as_absent():
    lin = nn.Linear(2, 3)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    assert "bias" in lin._parameters and lin.bias is None
    assert lin(tn.ones(1, 2)).shape == (1, 3)


def test_reassigning_a_name_moves_it_between_registries():
    m = nn.Module()
    m.x = nn.Linear(1, 1)
    m.x = nn.Parameter(tn.ones(1))
    assert "x" not in m._modules and "x" in m._parameters
    del m.x
    assert "x" not in m._parameters and not hasattr(m, "x")


def test_register_parameter_rejects_taken_or_bad_names():
    m = nn.Module()
    m.plain = 3
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("plain", nn.Parameter(tn.ones(1)))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", nn.Parameter(tn.ones(1)))
    with pytest.raises(TypeError):
        m.register_parameter("t", tn.ones(1))


def test_non_persistent_buffer_is_not_saved():
    m = nn.Module()
    m.register_buffer("kept", tn.ones(2))
    m.register_buffer("scratch", tn.ones(2), persistent=False)
    assert list(m.state_dict()) == ["kept"]
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]


def test_add_module_and_apply_visit_children_before_parent():
    m = nn.Module()
    m.add_module("first", nn.Linear(1, 1))
    m.add_module("second", nn.ReLU())
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "ReLU", "Module"]


# ---- parameters ----------------------------------------------------------------------------


def test_parameter_is_a_leaf_that_requires_grad():
    p = nn.Parameter(tn.zeros(3))
    assert isinstance(p, tn.Tensor) and p.is_leaf and p.requires_grad
    assert not nn.Parameter(tn.zeros(3), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_parameter_from_a_tensor_shares_its_memory():
    t = tn.zeros(3)
    p = nn.Parameter(t)
    t.data[0] = 5
    assert p.data[0] == 5


def test_parameter_of_integers_raises():
    with pytest.raises(tn.DTypeError):
        nn.Parameter(np.arange(3))


def test_operations_on_a_parameter_give_plain_tensors():
    p = nn.Parameter(tn.ones(2))
    assert type(p * 2) is tn.Tensor


# ---- modes, gradients, dtype ---------------------------------------------------------------


def test_train_and_eval_set_every_module():
    m = TwoLayer()
    assert m.training and m.fc1.training
    assert m.eval() is m
    assert not m.training and not m.fc1.training and not m.act.training
    m.train()
    assert all(mod.training for mod in m.modules())
    with pytest.raises(ValueError, match="boolean"):
        m.train("no")


def test_zero_grad_sets_to_none_or_zeros():
    m = xor_model()
    F.mse_loss(m(tn.ones(4, 2)), tn.zeros(4, 1)).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_requires_grad_false_freezes_every_parameter():
    m = xor_model()
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    assert not m(tn.ones(1, 2)).requires_grad


def test_double_casts_in_place_keeping_parameter_identity():
    m = TwoLayer()
    params = list(m.parameters())
    F.mse_loss(m(tn.ones(2, 3)), tn.zeros(2, 2)).backward()
    assert m.double() is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert m.running.dtype == np.float64
    assert m(tn.ones(2, 3, dtype=tn.float64)).dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert m.to("cpu") is m and m.to(tn.float64).fc1.weight.dtype == np.float64


def test_to_rejects_integer_dtypes_and_other_devices():
    m = xor_model()
    with pytest.raises(tn.DTypeError, match="floating"):
        m.to(tn.int64)
    with pytest.raises(ValueError, match="CPU"):
        m.to("cuda")


def test_module_without_forward_raises():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(tn.ones(1))


# ---- repr ----------------------------------------------------------------------------------


def test_repr_matches_pytorch_layout():
    m = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Softmax(dim=1), nn.Flatten(),
                      nn.Identity(), nn.LogSoftmax(1), nn.Tanh(), nn.ReLU(), nn.Step(),
                      nn.Step(surrogate="sigmoid"), nn.Linear(3, 1, bias=False))
    assert repr(m) == "\n".join([
        "Sequential(",
        "  (0): Linear(in_features=2, out_features=4, bias=True)",
        "  (1): Sigmoid()",
        "  (2): Softmax(dim=1)",
        "  (3): Flatten(start_dim=1, end_dim=-1)",
        "  (4): Identity()",
        "  (5): LogSoftmax(dim=1)",
        "  (6): Tanh()",
        "  (7): ReLU()",
        "  (8): Step()",
        "  (9): Step(surrogate='sigmoid')",
        "  (10): Linear(in_features=3, out_features=1, bias=False)",
        ")",
    ])


def test_repr_indents_nested_modules():
    assert repr(nn.Sequential(nn.Sequential(nn.ReLU()))) == (
        "Sequential(\n  (0): Sequential(\n    (0): ReLU()\n  )\n)"
    )


# ---- state dicts ---------------------------------------------------------------------------


def test_state_dict_holds_detached_tensors_sharing_memory_as_pytorch():
    m = xor_model()
    sd = m.state_dict()
    assert all(type(v) is tn.Tensor and not v.requires_grad for v in sd.values())
    snapshot = {k: v.clone() for k, v in sd.items()}  # the PyTorch idiom for a copy
    with tn.no_grad():
        m[0].weight.mul_(0).add_(7)
    assert (sd["0.weight"].data == 7).all()  # shares the parameter's memory
    assert not (snapshot["0.weight"].data == 7).any()
    kept = m.state_dict(keep_vars=True)
    assert kept["0.weight"] is m[0].weight


def test_load_state_dict_copies_values_in_place_and_bumps_versions():
    a, b = xor_model(), xor_model()
    weight = b[0].weight
    version = weight._version.value
    result = b.load_state_dict(a.state_dict())
    assert b[0].weight is weight and weight._version.value == version + 1
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[key], value)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_untouched(model, before):
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_with_a_wrong_shape_leaves_the_model_untouched():
    m = xor_model()
    before = _snapshot(m)
    bad = {k: v + 1 for k, v in before.items()}
    bad["2.weight"] = np.zeros((4, 1), np.float32)  # transposed
    with pytest.raises(tn.ShapeError, match=r"2\.weight.*\(1, 4\).*\(4, 1\)"):
        m.load_state_dict(bad)
    _assert_untouched(m, before)  # 0.weight etc. were valid but must not have been copied


def test_load_state_dict_casts_other_dtypes_to_the_models_as_pytorch():
    m = xor_model()
    before = _snapshot(m)
    values = {k: (v + 1).astype(np.float64) for k, v in before.items()}
    m.load_state_dict(values)
    for key, value in m.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, values[key].astype(np.float32))


def test_load_state_dict_of_float64_values_beyond_float32_names_both_dtypes():
    m = xor_model()
    before = _snapshot(m)
    bad = {k: (v + 1).astype(np.float64) for k, v in before.items()}
    bad["0.bias"][0] = 1e300
    with pytest.raises(tn.ValueRangeError, match=r"0\.bias.*float64 values beyond float32"):
        m.load_state_dict(bad)
    _assert_untouched(m, before)


def test_load_state_dict_lists_missing_and_unexpected_keys():
    m = xor_model()
    before = _snapshot(m)
    bad = dict(before)
    del bad["2.bias"]
    bad["3.weight"] = np.zeros(1, np.float32)
    with pytest.raises(nn.StateDictError) as info:
        m.load_state_dict(bad)
    assert "Missing key(s) in state_dict: '2.bias'" in str(info.value)
    assert "Unexpected key(s) in state_dict: '3.weight'" in str(info.value)
    assert isinstance(info.value, RuntimeError)
    _assert_untouched(m, before)


def test_load_state_dict_non_strict_loads_what_matches():
    m = xor_model()
    partial = {"0.weight": np.ones((4, 2), np.float32), "extra": np.zeros(1)}
    result = m.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["0.bias", "2.weight", "2.bias"]
    assert result.unexpected_keys == ["extra"]
    assert (m[0].weight.data == 1).all()


def test_load_state_dict_non_strict_still_checks_shapes():
    m = xor_model()
    with pytest.raises(tn.ShapeError):
        m.load_state_dict({"0.weight": np.ones((2, 4), np.float32)}, strict=False)


def test_load_state_dict_accepts_tensors_and_rejects_non_numbers():
    m = xor_model()
    sd = {k: tn.tensor(v) for k, v in xor_model().state_dict().items()}
    m.load_state_dict(sd)
    np.testing.assert_array_equal(m[0].weight.data, sd["0.weight"].data)
    sd["0.bias"] = np.array(["a", "b", "c", "d"])
    with pytest.raises(tn.DTypeError, match="0.bias"):
        m.load_state_dict(sd)


def test_state_dict_round_trips_through_pickle_and_deepcopy():
    m = TwoLayer()
    clone = copy.deepcopy(m)
    assert clone.fc1.weight is not m.fc1.weight
    assert clone.fc1.weight is clone._modules["fc1"]._parameters["weight"]
    restored = pickle.loads(pickle.dumps(m))
    for key, value in m.state_dict().items():
        np.testing.assert_array_equal(restored.state_dict()[key], value)


# ---- layers --------------------------------------------------------------------------------


def test_linear_shapes_and_formula():
    lin = nn.Linear(3, 2, dtype=tn.float64)
    assert lin.weight.shape == (2, 3) and lin.bias.shape == (2,)
    x = np.random.default_rng(0).standard_normal((5, 3))
    expected = x @ lin.weight.data.T + lin.bias.data
    np.testing.assert_allclose(lin(tn.tensor(x)).data, expected, rtol=1e-14)
    batched = np.random.default_rng(1).standard_normal((4, 5, 3))
    assert lin(tn.tensor(batched)).shape == (4, 5, 2)


def test_linear_default_init_is_uniform_in_one_over_sqrt_fan_in():
    tn.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight.data, lin.bias.data):
        assert p.min() >= -bound and p.max() <= bound
        assert p.max() > 0.95 * bound and p.min() < -0.95 * bound
    # Uniform on [-b, b] has variance b^2 / 3.
    assert abs(lin.weight.data.var() - bound**2 / 3) < 0.02 * bound**2


def test_manual_seed_reproduces_initialisation():
    tn.manual_seed(123)
    a = xor_model().state_dict()
    tn.manual_seed(123)
    b = xor_model().state_dict()
    c = xor_model().state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_linear_dtype_argument_and_default_dtype():
    assert nn.Linear(2, 2).weight.dtype == np.float32
    assert nn.Linear(2, 2, dtype=tn.float64).bias.dtype == np.float64
    with pytest.raises(ValueError):
        nn.Linear(2, 2, dtype=tn.int64)


def test_linear_gradients_match_finite_differences():
    lin = nn.Linear(3, 2, dtype=tn.float64)
    x = tn.randn(4, 3, dtype=tn.float64, requires_grad=True)
    assert tn.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, lin.weight, lin.bias])


def test_flatten_and_identity():
    x = tn.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Identity(54, unused="x")(x) is x


def test_activation_modules_compute_their_functions():
    x = tn.tensor(np.linspace(-3, 3, 13))
    d = x.data
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-d)), rtol=1e-14)
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(d), rtol=1e-14)
    np.testing.assert_array_equal(nn.ReLU()(x).data, np.maximum(d, 0))
    np.testing.assert_array_equal(nn.Step()(x).data, (d >= 0).astype(d.dtype))
    m = tn.tensor(np.arange(6.0).reshape(2, 3))
    e = np.exp(m.data - m.data.max(1, keepdims=True))
    np.testing.assert_allclose(nn.Softmax(dim=1)(m).data, e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(nn.LogSoftmax(dim=1)(m).data,
                               np.log(e / e.sum(1, keepdims=True)), rtol=1e-12)


def test_softmax_without_dim_warns_and_uses_pytorchs_legacy_choice():
    x = tn.randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = nn.Softmax()(x)
    np.testing.assert_allclose(y.data.sum(1), 1, rtol=1e-6)


def test_step_surrogate_passes_a_gradient_and_bad_surrogate_raises():
    x = tn.tensor([-0.5, 0.5], requires_grad=True)
    nn.Step()(x).sum().backward()
    assert not x.grad.data.any()
    x.grad = None
    nn.Step(surrogate="straight_through")(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1, 1])
    with pytest.raises(ValueError, match="surrogate"):
        nn.Step(surrogate="magic")


# ---- Sequential ----------------------------------------------------------------------------


def test_sequential_indexing_slicing_iteration_and_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    m = nn.Sequential(*layers)
    assert len(m) == 3 and m[0] is layers[0] and m[-1] is layers[2]
    assert list(m) == layers
    tail = m[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    assert list(tail._modules) == ["1", "2"]  # PyTorch keeps the names in a slice
    m.append(nn.Sigmoid())
    assert len(m) == 4 and type(m[3]) is nn.Sigmoid
    with pytest.raises(IndexError):
        m[4]


def test_sequential_setitem_delitem_insert_renumber():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    m[1] = nn.Tanh()
    assert type(m[1]) is nn.Tanh
    del m[1]
    assert list(m._modules) == ["0", "1"] and type(m[1]) is nn.Linear
    m.insert(1, nn.Sigmoid())
    assert [type(x).__name__ for x in m] == ["Linear", "Sigmoid", "Linear"]
    assert list(m._modules) == ["0", "1", "2"]


def test_sequential_from_an_ordered_dict_uses_its_names():
    m = nn.Sequential({"hidden": nn.Linear(2, 3), "act": nn.ReLU()})
    assert [n for n, _ in m.named_parameters()] == ["hidden.weight", "hidden.bias"]


@pytest.mark.parametrize(("activation", "name"), [(nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"),
                                             (nn.ReLU, "relu"), (nn.Step, "step")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequential_runs_what_you_wrote_and_the_explicit_fused_op_gives_the_same(
        activation, name, dtype):
    tn.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 7, dtype=dtype), activation(),
                          nn.Linear(7, 3, dtype=dtype))
    x = np.random.default_rng(2).standard_normal((6, 5)).astype(dtype)
    out = model(tn.tensor(x))
    hidden = out.grad_fn.parents[0]
    assert out.grad_fn.name == "LinearBackward"
    assert hidden.grad_fn.name == type(model[1]).__name__ + "Backward"  # no silent fusion
    out.sum().backward()
    grads = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    first, second = model[0], model[2]
    fused = tn.ops.linear(tn.tensor(x), first.weight, first.bias, activation=name)
    assert fused.grad_fn.name == "LinearBackward"  # one node, asked for explicitly
    explicit = F.linear(fused, second.weight, second.bias)
    explicit.sum().backward()
    np.testing.assert_array_equal(out.data, explicit.data)
    for a, p in zip(grads, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, p.grad.data)


def test_step_with_surrogate_in_sequential_lets_a_gradient_through():
    model = nn.Sequential(nn.Linear(2, 2), nn.Step(surrogate="sigmoid"), nn.Linear(2, 1))
    x = tn.randn(3, 2)
    out = model(x)
    assert out.grad_fn.name == "LinearBackward"
    assert out.grad_fn.parents[0].grad_fn.name == "StepSigmoidBackward"  # the surrogate's row
    out.sum().backward()
    assert model[0].weight.grad.data.any()  # the surrogate let a gradient through


def test_sequential_follows_changes_to_the_children():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid())
    x = tn.randn(3, 2)
    np.testing.assert_allclose(model(x).data, model[1](model[0](x)).data)
    model[1] = nn.ReLU()
    np.testing.assert_array_equal(model(x).data, np.maximum(model[0](x).data, 0))
    step = nn.Step()
    model[1] = step
    step.surrogate = "sigmoid"
    assert model(x).grad_fn.name == "StepSigmoidBackward"


def test_subclass_of_linear_runs_its_own_forward():
    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(Doubled(2, 2), nn.Identity())
    x = tn.randn(3, 2)
    np.testing.assert_allclose(model(x).data, model[0](x).data)
    np.testing.assert_allclose(model(x).data, 2 * nn.Linear.forward(model[0], x).data)


def test_float32_model_stays_float32():
    model = xor_model()
    x = tn.tensor(np.ones((4, 2), np.float32))
    out = model(x)
    loss = F.mse_loss(out, np.zeros((4, 1)))  # float64 numpy targets
    loss.backward()
    assert out.dtype == np.float32 and loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


# ---- init ----------------------------------------------------------------------------------


def test_init_functions_fill_in_place_under_no_grad_and_bump_the_version():
    w = nn.Parameter(tn.zeros(30, 20))
    version = w._version.value
    assert init.ones_(w) is w and (w.data == 1).all()
    assert init.zeros_(w) is w and not w.data.any()
    init.constant_(w, 0.5)
    assert (w.data == 0.5).all() and w.dtype == np.float32
    init.normal_(w, 2.0, 0.1)
    assert abs(w.data.mean() - 2.0) < 0.05
    init.uniform_(w, -0.5, -0.25)
    assert w.data.min() >= -0.5 and w.data.max() <= -0.25
    assert w._version.value == version + 5 and w.requires_grad and w.is_leaf


@pytest.mark.parametrize(
    ("fn", "bound"),
    [
        (lambda w: init.xavier_uniform_(w), math.sqrt(6 / (200 + 100))),
        (lambda w: init.xavier_uniform_(w, gain=2.0), 2 * math.sqrt(6 / 300)),
        (lambda w: init.kaiming_uniform_(w), math.sqrt(6 / 200)),  # leaky_relu, a=0
        (lambda w: init.kaiming_uniform_(w, nonlinearity="relu"), math.sqrt(6 / 200)),
        (lambda w: init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"),
         math.sqrt(6 / 100)),
        (lambda w: init.kaiming_uniform_(w, a=math.sqrt(5)), 1 / math.sqrt(200)),
    ],
)
def test_uniform_initialisers_fill_their_bound(fn, bound):
    w = tn.zeros(100, 200, dtype=tn.float64)
    fn(w)
    assert np.abs(w.data).max() <= bound
    assert np.abs(w.data).max() > 0.99 * bound


@pytest.mark.parametrize(
    ("fn", "std"),
    [
        (lambda w: init.xavier_normal_(w), math.sqrt(2 / 300)),
        (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2 / 200)),
        (lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="tanh"),
         5 / 3 / math.sqrt(100)),
    ],
)
def test_normal_initialisers_have_their_std(fn, std):
    tn.manual_seed(0)
    w = tn.zeros(100, 200, dtype=tn.float64)
    fn(w)
    n = w.data.size  # 5 standard errors of the sample's std and mean: a wrong gain is 10x more
    assert abs(w.data.std() - std) < 5 * std / math.sqrt(2 * n)
    assert abs(w.data.mean()) < 5 * std / math.sqrt(n)


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swish")


def test_init_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tn.zeros(5))
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_uniform_(tn.zeros(2, 2), mode="fan_avg")
    with pytest.raises(TypeError, match="Tensor"):
        init.ones_(np.zeros(3))


def test_init_uses_the_global_generator_or_a_given_one():
    w1, w2 = tn.zeros(3, 4), tn.zeros(3, 4)
    tn.manual_seed(5)
    init.normal_(w1)
    tn.manual_seed(5)
    init.normal_(w2)
    np.testing.assert_array_equal(w1.data, w2.data)
    init.uniform_(w1, generator=7)
    init.uniform_(w2, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(w1.data, w2.data)
