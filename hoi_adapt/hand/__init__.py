"""Hand model (MANO through smplx), the built-in stand-in model, joint orders and pose sampling."""
