from neuralrg.cli import console

console()
