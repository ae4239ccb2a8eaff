# ruff: noqa -- a script as PyTorch users write it (globals handed in, their style kept)
# A page of everyday tensor idioms; every result lands in R under a name.
import numpy as np
import torch
import torch.nn.functional as F

R = {}
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# creation
R["zeros"] = torch.zeros(2, 3, device=device)
R["ones_dtype"] = torch.ones((2, 2), dtype=torch.float64)
R["full"] = torch.full((2, 3), 7.5)
R["arange"] = torch.arange(10)
R["arange_step"] = torch.arange(0, 1, 0.25)
R["linspace"] = torch.linspace(0, 1, steps=5)
R["eye"] = torch.eye(3)
R["eye_rect"] = torch.eye(2, 4)
R["tensor_list"] = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32, device=device)
R["zeros_like"] = torch.zeros_like(R["tensor_list"])
R["ones_like"] = torch.ones_like(R["arange"])
R["empty_shape"] = tuple(torch.empty(3, 4).shape)
R["default_dtype"] = str(torch.tensor([1.0]).dtype)
R["int_dtype"] = str(torch.tensor([1, 2]).dtype)
R["bool_dtype"] = str(torch.tensor([True]).dtype)
torch.manual_seed(0)
R["rand_shape"] = tuple(torch.rand(2, 5).shape)
R["randn_dtype"] = str(torch.randn(3, dtype=torch.float64).dtype)
r = torch.randint(0, 10, (100,))
R["randint_range"] = bool(((r >= 0) & (r < 10)).all())
R["randperm_sorted"] = torch.randperm(8).sort().values

x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
y = torch.tensor([[1.0, -2.0, 3.0, -4.0], [0.5, 0.0, -0.5, 2.0], [9.0, 8.0, 7.0, 6.0]])
# indexing
R["row"] = x[1]
R["col"] = x[:, 2]
R["slice"] = x[1:, ::2]
R["neg_index"] = x[-1, -2]
R["fancy"] = x[[0, 2]]
R["fancy_pairs"] = x[[0, 1, 2], [3, 2, 1]]
R["ellipsis"] = x[..., 0]
R["none_index"] = tuple(x[None, :, None].shape)
R["tensor_index"] = x[torch.tensor([2, 0])]
R["item"] = x[2, 3].item()
# masks
mask = y > 0
R["mask"] = mask
R["masked_select"] = y[mask]
R["mask_count"] = mask.sum().item()
R["masked_fill"] = y.masked_fill(y < 0, 0.0)
z = y.clone()
z[z < 0] = -1.0
R["mask_assign"] = z
R["any_all"] = [bool((y > 8).any()), bool((y > -5).all())]
R["nonzero"] = torch.nonzero(mask)
R["where"] = torch.where(y > 0, y, torch.zeros_like(y))
R["where_scalar"] = torch.where(y > 0, y, 0.0)
R["logical"] = torch.logical_and(y > 0, y < 5)
# joining
R["cat0"] = torch.cat([x, y], dim=0)
R["cat1"] = torch.cat((x, y), 1)
R["stack"] = torch.stack([x[0], y[0]])
R["stack_dim1"] = torch.stack([x[0], y[0]], dim=1)
R["chunk"] = list(torch.chunk(torch.arange(10), 3))
R["split"] = list(torch.arange(10).split(4))
# shapes
R["view"] = x.view(4, 3)
R["view_neg"] = x.view(-1)
R["reshape"] = x.reshape(2, -1)
R["permute"] = x.reshape(1, 3, 4).permute(2, 0, 1)
R["transpose"] = x.transpose(0, 1)
R["contiguous_view"] = x.t().contiguous().view(-1)
R["is_contiguous"] = [x.is_contiguous(), x.t().is_contiguous()]
R["T"] = x.T
R["unsqueeze"] = tuple(x.unsqueeze(0).shape)
R["squeeze"] = tuple(torch.zeros(1, 3, 1).squeeze().shape)
R["flatten"] = torch.flatten(x.reshape(3, 2, 2), start_dim=1)
R["expand"] = torch.tensor([[1.0], [2.0]]).expand(2, 3)
R["repeat"] = torch.tensor([1, 2]).repeat(2, 2)
R["size"] = [x.size(), x.size(1), x.shape[0], x.dim(), x.numel(), len(x)]
# selection and sorting
R["argmax"] = y.argmax()
R["argmax_dim"] = y.argmax(dim=1)
R["argmin_keep"] = y.argmin(dim=0, keepdim=True)
vals, idx = torch.max(y, 1)
R["max_dim"] = [vals, idx]
R["max_all"] = torch.max(y)
R["max_pair"] = torch.max(x, y)
R["topk"] = list(y.topk(2, dim=1))
R["topk_smallest"] = list(torch.topk(y.flatten(), 3, largest=False))
R["sort"] = list(torch.sort(y, dim=1, descending=True))
R["argsort"] = y[0].argsort()
R["unique"] = torch.unique(torch.tensor([3, 1, 2, 3, 1]))
R["gather"] = y.gather(1, torch.tensor([[0], [3], [1]]))
# reductions
R["sum"] = y.sum()
R["sum_dim"] = y.sum(dim=0)
R["sum_keep"] = y.sum(1, keepdim=True)
R["mean"] = y.mean(dim=1)
R["std"] = y.std()
R["var_dim"] = y.var(dim=0, unbiased=False)
R["prod"] = torch.tensor([1.0, 2.0, 3.0, 4.0]).prod()
R["cumsum"] = torch.arange(5).cumsum(dim=0)
R["norm"] = y.norm()
R["norm_dim"] = y.norm(dim=1)
R["min_max"] = [y.min().item(), y.max().item()]
R["amax"] = y.amax(dim=0)
R["logsumexp"] = torch.logsumexp(y, dim=1)
R["normalize_rows"] = y / y.sum(dim=1, keepdim=True)
# arithmetic and broadcasting
R["matmul"] = x @ y.T
R["matmul_fn"] = torch.matmul(x, y.t())
R["mm_vec"] = x @ torch.ones(4)
R["bmm"] = torch.bmm(x.reshape(1, 3, 4), y.T.reshape(1, 4, 3))
R["broadcast_row"] = x + torch.tensor([1.0, 2.0, 3.0, 4.0])
R["broadcast_col"] = x * torch.tensor([[1.0], [10.0], [100.0]])
R["outer_broadcast"] = torch.arange(3).unsqueeze(1) * torch.arange(4).unsqueeze(0)
R["pow"] = x ** 2
R["sqrt_exp_log"] = [x.sqrt(), torch.exp(y / 10), torch.log1p(x)]
R["abs_sign"] = [y.abs(), torch.sign(y)]
R["clamp"] = y.clamp(min=-1.0, max=2.0)
R["clamp_min"] = torch.clamp(y, min=0)
R["floor_div"] = torch.arange(10) // 3
R["remainder"] = torch.arange(10) % 3
R["int_div"] = torch.arange(6) / 4
R["round"] = torch.round(y / 3, decimals=2)
R["softmax"] = F.softmax(y, dim=1)
R["log_softmax"] = torch.log_softmax(y, dim=-1)
R["sigmoid_tanh"] = [torch.sigmoid(y), y.tanh()]
R["relu"] = F.relu(y)
R["one_hot"] = F.one_hot(torch.tensor([0, 2, 1]), num_classes=3)
R["eq"] = (torch.tensor([1, 2, 3]) == torch.tensor([1, 0, 3]))
R["eq_fn"] = torch.tensor([1, 2, 3]).eq(torch.tensor([1, 0, 3])).sum().item()
R["allclose"] = [torch.allclose(y, y + 1e-9), torch.allclose(y, y + 1e-3)]
R["equal"] = torch.equal(x, x.clone())
R["isnan"] = torch.isnan(torch.tensor([1.0, float("nan")]))
R["diff_eps"] = (y - y.flip(0)).abs().max().item()
# in-place updates and autograd
w = torch.ones(3, requires_grad=True)
loss = (w * torch.tensor([1.0, 2.0, 3.0])).pow(2).sum()
loss.backward()
R["grad"] = w.grad.clone()
with torch.no_grad():
    w -= 0.1 * w.grad
    w.mul_(2)
R["inplace_no_grad"] = w.detach().clone()
R["requires_grad_after"] = w.requires_grad
w.grad.zero_()
R["grad_zeroed"] = w.grad
a = torch.zeros(3)
a.add_(1).mul_(3)
a[0] = 10
a.clamp_(max=5)
R["inplace_chain"] = a
b = torch.zeros(2, 3)
b.fill_(2.0)
b.index_add_(0, torch.tensor([1]), torch.ones(1, 3))
R["fill_index_add"] = b
R["detach_numpy"] = w.detach().numpy()
# numpy and python interop
arr = np.array([[1.5, 2.5], [3.5, 4.5]], dtype=np.float32)
t = torch.from_numpy(arr)
R["from_numpy_dtype"] = str(t.dtype)
R["as_tensor"] = torch.as_tensor([1, 2, 3], dtype=torch.float32)
R["numpy_roundtrip"] = (t * 2).numpy()
R["tolist"] = x.tolist()
R["tolist_scalar"] = torch.tensor(3.5).tolist()
R["item_int"] = torch.tensor([7]).item()
R["numpy_of_bool"] = (x > 5).numpy()
# dtype conversions
R["float"] = torch.arange(3).float()
R["long"] = torch.tensor([1.7, -1.7, 2.2]).long()
R["double"] = str(x.double().dtype)
R["int"] = y.int()
R["to_dtype"] = str(x.to(torch.float16).dtype)
R["bool"] = torch.tensor([0, 1, 2]).bool()
R["type_promotion"] = str((torch.arange(3) + 0.5).dtype)
R["int_float_promotion"] = str((torch.tensor([1, 2]) * torch.tensor([1.0, 2.0])).dtype)
R["to_device"] = x.to(device).cpu()
R["type_as"] = str(torch.arange(3).type_as(x).dtype)
R["half_precision"] = torch.tensor([1.0 / 3.0]).half().float()
# seeds make draws repeatable
torch.manual_seed(123)
first = torch.rand(4)
torch.manual_seed(123)
R["seed_repeat"] = torch.equal(first, torch.rand(4))
g = torch.Generator().manual_seed(5)
first = torch.randn(3, generator=g)
g.manual_seed(5)
R["generator_repeat"] = torch.allclose(first, torch.randn(3, generator=g))
RESULTS = R
