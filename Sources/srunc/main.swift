import SruncCLI
@preconcurrency import Glibc

exit(Srunc.main(CommandLine.arguments))
