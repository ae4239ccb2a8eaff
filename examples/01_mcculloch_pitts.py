"""1943: the McCulloch-Pitts neuron.

A neuron with binary inputs x_i in {0, 1}, fixed weights w_i (+1 excitatory, -1 inhibitory)
and a threshold theta. It fires (outputs 1) when

    w_1 x_1 + ... + w_n x_n >= theta

and stays silent (0) otherwise. Choosing the weights and the threshold by hand gives the logic
gates; wiring neurons together gives any Boolean function, XOR included.

Run: python examples/01_mcculloch_pitts.py
"""

from tinynet.perceptron import MCPNeuron, format_truth_table, mcp_gate, truth_table


def main() -> None:
    gates = {name: mcp_gate(name) for name in ("AND", "OR", "NAND")}
    for name, neuron in gates.items():
        print(f"{name:4s} = {neuron}")
    inputs, _ = truth_table(gates["AND"])
    print(format_truth_table(inputs, {name: neuron(inputs) for name, neuron in gates.items()}))

    # One neuron can count: "at least 2 of 3 inputs on" is the majority function.
    majority = MCPNeuron([1, 1, 1], threshold=2)
    inputs, outputs = majority.truth_table()
    print(f"\nmajority = {majority}")
    print(format_truth_table(inputs, outputs, output_name="majority"))

    # NOT: a single inhibitory input with threshold 0 fires only when the input is off.
    not_gate = mcp_gate("NOT")
    print(f"\nNOT = {not_gate}: NOT(0) = {not_gate([0])}, NOT(1) = {not_gate([1])}")

    # XOR needs two layers: XOR(a, b) = AND(NAND(a, b), OR(a, b)).
    inputs, _ = truth_table(gates["AND"])
    nand, or_ = gates["NAND"](inputs), gates["OR"](inputs)
    xor = gates["AND"](list(zip(nand, or_, strict=True)))
    print("\nXOR from three neurons in two layers:")
    print(format_truth_table(inputs, {"XOR": xor}, extra={"NAND": nand, "OR": or_}))


if __name__ == "__main__":
    main()
