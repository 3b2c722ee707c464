"""The intermediate representation: the Program, and the primitives it is made of."""
