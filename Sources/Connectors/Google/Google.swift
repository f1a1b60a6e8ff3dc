import ConnectorCore
import HTTP
import OAuth
import WizardProtocol
