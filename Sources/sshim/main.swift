import Shim

ShimMain.main(Array(CommandLine.arguments.dropFirst()))
