import BonectlCommands

Bonectl.main()
