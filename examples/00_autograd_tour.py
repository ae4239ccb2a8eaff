"""A tour of tinynet's autograd, in five stops. Run it: ``python examples/00_autograd_tour.py``.

1. Build a graph by hand and look at it: every op leaves a node (``grad_fn``) that points to
   the op's inputs.
2. Walk it in the order backward will (``tn.autograd.topological_order``).
3. Run backward with a trace: one printed line per node, gradients' shapes and sizes.
4. Write your own op: a ``Function`` with ``forward`` (numpy in, numpy out) and ``backward``
   (Tensors in, Tensors out), side by side.
5. Check it: ``tn.gradcheck`` compares your backward with central differences, and
   ``tn.gradgradcheck`` the second derivative (which works because backward uses Tensor ops).

The engine behind all of it is ``tinynet/autograd/engine.py``; docs/autograd.md walks it.
"""

from __future__ import annotations

import tinynet as tn
from tinynet.autograd import Function

# ---- 1. A graph, built by hand ---------------------------------------------------------------

x = tn.tensor([[1.0, 2.0]])  # an input: no gradient wanted
w = tn.tensor([[0.5, -0.3]], requires_grad=True)  # leaves that want gradients
b = tn.tensor([0.1], requires_grad=True)
y = (x @ w.T + b).sigmoid()
loss = ((y - 1.0) ** 2).mean()

print("1. the graph, from the loss back to the leaves")
print(f"   loss = {loss.item():.4f}, loss.grad_fn = {loss.grad_fn}")
node = loss.grad_fn
while node is not None:
    inputs = ", ".join(
        str(p.grad_fn) if getattr(p, "grad_fn", None) else
        ("leaf" if getattr(p, "requires_grad", False) else "constant") for p in node.parents)
    print(f"   {node.name:18s} inputs: {inputs}")
    following = [p.grad_fn for p in node.parents if getattr(p, "grad_fn", None)]
    node = following[0] if following else None

# ---- 2. The order backward visits the nodes ---------------------------------------------------

print("\n2. topological order (each node before the nodes that made its inputs)")
print("   " + " -> ".join(n.name for n in tn.autograd.topological_order([loss])))

# ---- 3. Backward, traced -------------------------------------------------------------------

print("\n3. backward, one line per node")
loss.backward(trace=True)
print(f"   w.grad = {w.grad.tolist()}, b.grad = {b.grad.tolist()}")

# ---- 4. A Function of your own ---------------------------------------------------------------


class Cube(Function):
    """y = x^3;  dy/dx = 3 x^2"""

    @staticmethod
    def forward(ctx, x: tn.Tensor) -> tn.Tensor:  # Tensors in, a Tensor out (not recorded)
        ctx.save_for_backward(x)  # inputs or the output only; other values: ctx.name = value
        return x**3

    @staticmethod
    def backward(ctx, grad: tn.Tensor) -> tn.Tensor:  # Tensors in, Tensors out
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x  # Tensor ops: so create_graph can differentiate this again


print("\n4. a custom Function")
z = tn.tensor([1.0, -2.0, 0.5], dtype=tn.float64, requires_grad=True)
Cube.apply(z).sum().backward()
print(f"   d/dz sum(z^3) = {z.grad.tolist()}  (3 z^2 = {(3 * z.data**2).tolist()})")

# ---- 5. Check it ---------------------------------------------------------------------------

print("\n5. gradcheck against central differences, and the second derivative")
print(f"   gradcheck:     {tn.gradcheck(Cube.apply, (z,))}")
print(f"   gradgradcheck: {tn.gradgradcheck(Cube.apply, (z,))}")
(dz,) = tn.autograd.grad(Cube.apply(z).sum(), z, create_graph=True)
(d2z,) = tn.autograd.grad(dz.sum(), z)
print(f"   d2/dz2 sum(z^3) = {d2z.tolist()}  (6 z = {(6 * z.data).tolist()})")
