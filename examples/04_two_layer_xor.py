"""Two layers of threshold units compute XOR.

XOR(a, b) = AND(NAND(a, b), OR(a, b)). The hidden layer (NAND, OR) maps the four corners

    (0,0) -> (1,0)    (0,1) -> (1,1)    (1,0) -> (1,1)    (1,1) -> (0,1)

and in these new coordinates XOR's 1s, both at (1,1), sit apart from its 0s: one line (AND)
separates them. A hidden layer turns a problem no line can solve into one a line can.

The catch: the hidden weights were chosen by hand. A perceptron can learn the output unit on
top of good hidden features (shown below), but the perceptron rule has no way to learn the
hidden layer -- it needs to know what each hidden unit *should* have output, and nobody says.

Run: python examples/04_two_layer_xor.py
"""

import tinynet as tn
from tinynet.perceptron import PERCEPTRON_GATES, Perceptron, format_truth_table, xor_network


def main() -> None:
    for name in ("NAND", "OR", "AND"):
        w, b = PERCEPTRON_GATES[name]
        print(f"{name:4s}: w = [{w[0]:+g}, {w[1]:+g}], b = {b:+g}")
    for kind in ("perceptron", "mcp"):
        net = xor_network(kind)
        inputs, outputs = net.truth_table()
        hidden = net.hidden_activations(inputs)
        print(f"\nXOR from {kind} units:")
        print(format_truth_table(inputs, {"XOR": outputs},
                                 extra={"NAND": hidden[:, 0], "OR": hidden[:, 1]}))

    # The output layer can be learned: the hidden features make XOR linearly separable.
    X, y = tn.data.logic_gate("xor")
    features = xor_network().hidden_activations(X)
    top = Perceptron(2, lr=0.1, seed=0)
    result = top.fit(features, y)
    print(f"\na perceptron on the hidden features (NAND, OR): {result}")
    print(f"  learned output unit: w = {top.weight.round(3).tolist()}, b = {top.bias:.3f}")
    print(format_truth_table(X, {"target": y, "network": top.predict(features)}))


if __name__ == "__main__":
    main()
