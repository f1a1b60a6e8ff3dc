;;; syncwizard-example.el --- Drive syncwizard with jsonrpc.el -*- lexical-binding: t -*-

;; Run:  emacs --batch -l syncwizard-example.el [syncwizard options...]
;;       e.g. emacs --batch -l syncwizard-example.el --secret-store memory
;;
;; Starts one syncwizard (SYNCWIZARD names the binary, default: syncwizard on PATH), creates a
;; profile, reads the wizard state and shows the blockers of nextStep's stepIncomplete error.
;; jsonrpc.el is what eglot uses; it frames messages with Content-Length, which syncwizard
;; detects and answers in kind.  Results arrive as plists, arrays as vectors, null as nil.

;;; Code:

(require 'jsonrpc)
(require 'cl-lib)

(defun syncwizard-example-say (format-string &rest args)
  "Print FORMAT-STRING with ARGS and a newline on standard output."
  (princ (concat (apply #'format format-string args) "\n")))

(defun syncwizard-example-connect (arguments)
  "Start syncwizard with ARGUMENTS and return a jsonrpc connection to it."
  (make-instance
   'jsonrpc-process-connection
   :name "syncwizard"
   :process (make-process
             :name "syncwizard"
             :command (cons (or (getenv "SYNCWIZARD") "syncwizard") arguments)
             :connection-type 'pipe
             :coding 'utf-8-emacs-unix
             :noquery t
             ;; syncwizard logs on stderr, never on stdout: keep that apart.
             :stderr (get-buffer-create "*syncwizard stderr*"))
   ;; progress {requestId, stage, message, percent?}, signInCompleted, signInFailed.
   :notification-dispatcher
   (lambda (_connection method params)
     (when (eq method 'progress)
       (syncwizard-example-say "  ... %s" (plist-get params :message))))))

(defun syncwizard-example-show-blockers (blockers)
  "Print BLOCKERS, a vector of {system, kind, message} plists."
  (cl-loop for blocker across blockers
           do (syncwizard-example-say "  %s: %s [%s]"
                                      (plist-get blocker :system)
                                      (plist-get blocker :message)
                                      (plist-get blocker :kind))))

(defun syncwizard-example-main (arguments)
  "The example: connect with ARGUMENTS, create a profile, read the state, try nextStep."
  (let* ((connection (syncwizard-example-connect arguments))
         (info (jsonrpc-request connection :initialize
                                '(:clientInfo (:name "syncwizard-example.el" :version "1.0"))))
         (profile (jsonrpc-request connection :createProfile '(:name "Emacs example")))
         (id (plist-get profile :id)))
    (syncwizard-example-say "Connected to %s %s"
                            (plist-get (plist-get info :serverInfo) :name)
                            (plist-get (plist-get info :serverInfo) :version))
    (syncwizard-example-say "Created profile %s (%s)" (plist-get profile :name) id)
    (jsonrpc-request connection :selectCalendarSystem `(:profileId ,id :system "exchange"))
    (let ((state (jsonrpc-request connection :getWizardState `(:profileId ,id))))
      (syncwizard-example-say "SuperOffice: %s, calendar (%s): %s"
                              (plist-get (plist-get state :superOffice) :status)
                              (plist-get (plist-get state :calendar) :system)
                              (plist-get (plist-get state :calendar) :status)))
    ;; An error reply signals `jsonrpc-error'; its data is an alist with `jsonrpc-error-code',
    ;; `jsonrpc-error-message' and `jsonrpc-error-data' (error.data as a plist).
    (condition-case err
        (syncwizard-example-say "Next step: %s"
                                (plist-get (jsonrpc-request connection :nextStep `(:profileId ,id))
                                           :step))
      (jsonrpc-error
       (let ((data (alist-get 'jsonrpc-error-data (cdr err))))
         (if (not (equal (plist-get data :kind) "stepIncomplete"))
             (signal (car err) (cdr err))
           (syncwizard-example-say "Cannot move on yet (%s):" (plist-get data :kind))
           (syncwizard-example-show-blockers (plist-get data :blockers))))))
    (jsonrpc-request connection :shutdown nil)
    ;; EOF on syncwizard's stdin: it exits with status 0.
    (let ((process (jsonrpc--process connection)))
      (process-send-eof process)
      (while (process-live-p process) (accept-process-output process 0.1))
      (syncwizard-example-say "syncwizard exited with status %d" (process-exit-status process)))))

(when noninteractive
  ;; The rest of the command line is syncwizard's: take it before Emacs reads it as its own.
  (let ((arguments command-line-args-left))
    (setq command-line-args-left nil)
    (syncwizard-example-main arguments)))

;;; syncwizard-example.el ends here
