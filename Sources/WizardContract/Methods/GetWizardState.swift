import RPCCore

public enum GetWizardState: RPCMethod {
    public static let name = "getWizardState"
    public typealias Params = ProfileIDParams
    public typealias Result = WizardState
}
