from kgrec.cli import main

main()
