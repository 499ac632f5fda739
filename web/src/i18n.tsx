import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

const en = {
  appName: "Parley",
  signIn: "Sign in",
  signUp: "Sign up",
  signOut: "Sign out",
  createAccount: "Create account",
  username: "Username",
  usernameOrEmail: "Username or email",
  password: "Password",
  emailOptional: "Email (optional)",
  email: "Email",
  displayName: "Display name",
  displayNameOptional: "Display name (optional)",
  avatarUrl: "Avatar URL",
  haveAccount: "Already have an account?",
  forgotPassword: "Forgot password?",
  resetPassword: "Reset password",
  resetIntro: "Enter your username or email. We will send a one-time code to reset your password.",
  sendCode: "Send code",
  codeSent: "If the account exists, a code is on its way (valid for {minutes} min). Enter it below.",
  code: "Code",
  newPassword: "New password",
  currentPassword: "Current password",
  confirmPassword: "Confirm new password",
  passwordsDiffer: "The passwords do not match.",
  passwordReset: "Your password was reset. Sign in with the new one.",
  backToSignIn: "Back to sign in",
  welcomeBack: "Welcome back",
  welcomeSub: "Your own AI chat, on your own providers.",
  profile: "Profile",
  changePassword: "Change password",
  passwordChanged: "Password changed. Other devices were signed out.",
  apiConfigs: "API configs",
  personas: "Personas",
  language: "Language",
  save: "Save",
  saved: "Saved",
  cancel: "Cancel",
  delete: "Delete",
  edit: "Edit",
  loading: "Loading…",
  newChat: "New chat",
  chats: "Chats",
  noChats: "No chats yet.",
  showArchived: "Show archived",
  hideArchived: "Hide archived",
  archived: "Archived",
  pinned: "Pinned",
  rename: "Rename",
  pin: "Pin",
  unpin: "Unpin",
  archive: "Archive",
  unarchive: "Unarchive",
  chatOptions: "Chat options",
  deleteChatConfirm: "Delete this chat and all its messages?",
  untitled: "New chat",
  send: "Send",
  stop: "Stop",
  regenerate: "Regenerate",
  answerAgain: "Answer this",
  copy: "Copy",
  copied: "Copied",
  copyCode: "Copy code",
  copyMessage: "Copy message",
  messagePlaceholder: "Message {name}…",
  inputHint: "Enter to send, Shift+Enter for a new line",
  reasoning: "Reasoning",
  thinking: "Thinking…",
  stopped: "Stopped",
  failed: "Failed",
  deleteMessageConfirm: "Delete this message?",
  dismiss: "Dismiss",
  jumpToLatest: "Jump to latest",
  openSidebar: "Open sidebar",
  closeSidebar: "Close sidebar",
  userMenu: "Account menu",
  persona: "Persona",
  apiConfig: "API config",
  model: "Model",
  startChatTitle: "What can I help with?",
  startChatSub: "Pick a persona and a provider, then write your first message.",
  needConfig: "Add an API config first: Parley talks to any OpenAI-compatible provider.",
  addConfig: "Add API config",
  name: "Name",
  baseUrl: "Base URL",
  apiKey: "API key",
  apiKeyKeep: "Leave empty to keep the stored key",
  keyHint: "Key",
  testConnection: "Test connection",
  testing: "Testing…",
  connectionOk: "Connected in {ms} ms",
  modelMissing: "(the model is not in the provider's list)",
  loadModels: "Load models",
  modelsLoaded: "{n} models",
  noConfigs: "No API configs yet.",
  default: "Default",
  deleteConfigConfirm: "Delete the API config “{name}”?",
  newPersona: "New persona",
  description: "Description",
  systemPrompt: "System prompt",
  builtIn: "Built-in",
  deletePersonaConfirm: "Delete the persona “{name}”?",
  chatNotFound: "This chat does not exist.",
  sessionExpired: "Your session ended. Please sign in again.",
  networkError: "Cannot reach the server.",
  settings: "Settings",
  tokens: "{prompt} in · {completion} out",
  skipToComposer: "Skip to the message box",
  skipToContent: "Skip to the content",
  today: "Today",
  yesterday: "Yesterday",
  previous7Days: "Previous 7 days",
  older: "Older",
  answerComplete: "Answer complete",
  keyNeededToTest: "Enter the API key to try settings that are not saved yet.",
  image: "Image",
  loadImageFrom: "Load image from {host}",
  notifications: "Notifications",
  signedOutElsewhere: "You signed out in another tab.",
  unreachableTitle: "Can't reach Parley",
  unreachableBody: "The server is not answering. You are still signed in; Parley keeps trying.",
  retryingIn: "Retrying in {seconds} s…",
  retrying: "Retrying…",
  retryNow: "Retry now",
  codeWait: "A code was sent moments ago. You can ask for another in {seconds} s.",
  codeResent: "A new code is on its way (valid for {minutes} min). Codes sent before no longer work.",
  codeFor: "Code for",
  changeLogin: "Change",
  resendCode: "Resend code",
  resendIn: "Resend code in {seconds} s",
  couldNotUpdateChat: "Could not change the chat",
  couldNotDeleteChat: "Could not delete the chat",
  couldNotSwitchModel: "Could not switch the model",
  couldNotSignOut: "Could not sign out",
  retry: "Retry",
  chatsLoadFailed: "Could not load your chats",
  catalogLoadFailed: "Could not load your personas and API configs",
  stopping: "Stopping…",
  saveAndRegenerate: "Save & regenerate",
  editHint: "Ctrl/⌘+Enter to save, Esc to cancel",
};

export type MessageKey = keyof typeof en;

const zhCN: Record<MessageKey, string> = {
  appName: "Parley",
  signIn: "登录",
  signUp: "注册",
  signOut: "退出登录",
  createAccount: "创建账号",
  username: "用户名",
  usernameOrEmail: "用户名或邮箱",
  password: "密码",
  emailOptional: "邮箱（可选）",
  email: "邮箱",
  displayName: "显示名称",
  displayNameOptional: "显示名称（可选）",
  avatarUrl: "头像 URL",
  haveAccount: "已有账号？",
  forgotPassword: "忘记密码？",
  resetPassword: "重置密码",
  resetIntro: "输入用户名或邮箱，我们会发送一次性验证码用于重置密码。",
  sendCode: "发送验证码",
  codeSent: "如果该账号存在，验证码已发出（{minutes} 分钟内有效）。请在下方输入。",
  code: "验证码",
  newPassword: "新密码",
  currentPassword: "当前密码",
  confirmPassword: "确认新密码",
  passwordsDiffer: "两次输入的密码不一致。",
  passwordReset: "密码已重置，请使用新密码登录。",
  backToSignIn: "返回登录",
  welcomeBack: "欢迎回来",
  welcomeSub: "你自己的 AI 聊天，连接你自己的模型服务。",
  profile: "个人资料",
  changePassword: "修改密码",
  passwordChanged: "密码已修改，其他设备已退出登录。",
  apiConfigs: "API 配置",
  personas: "角色",
  language: "语言",
  save: "保存",
  saved: "已保存",
  cancel: "取消",
  delete: "删除",
  edit: "编辑",
  loading: "加载中…",
  newChat: "新对话",
  chats: "对话",
  noChats: "还没有对话。",
  showArchived: "显示已归档",
  hideArchived: "隐藏已归档",
  archived: "已归档",
  pinned: "已置顶",
  rename: "重命名",
  pin: "置顶",
  unpin: "取消置顶",
  archive: "归档",
  unarchive: "取消归档",
  chatOptions: "对话选项",
  deleteChatConfirm: "删除此对话及其所有消息？",
  untitled: "新对话",
  send: "发送",
  stop: "停止",
  regenerate: "重新生成",
  answerAgain: "回答这个问题",
  copy: "复制",
  copied: "已复制",
  copyCode: "复制代码",
  copyMessage: "复制消息",
  messagePlaceholder: "给 {name} 发消息…",
  inputHint: "Enter 发送，Shift+Enter 换行",
  reasoning: "思考过程",
  thinking: "思考中…",
  stopped: "已停止",
  failed: "失败",
  deleteMessageConfirm: "删除这条消息？",
  dismiss: "关闭",
  jumpToLatest: "跳到最新",
  openSidebar: "打开侧边栏",
  closeSidebar: "关闭侧边栏",
  userMenu: "账号菜单",
  persona: "角色",
  apiConfig: "API 配置",
  model: "模型",
  startChatTitle: "有什么可以帮你？",
  startChatSub: "选择角色和模型服务，然后写下第一条消息。",
  needConfig: "请先添加 API 配置：Parley 支持任何兼容 OpenAI 的模型服务。",
  addConfig: "添加 API 配置",
  name: "名称",
  baseUrl: "Base URL",
  apiKey: "API 密钥",
  apiKeyKeep: "留空则保留已保存的密钥",
  keyHint: "密钥",
  testConnection: "测试连接",
  testing: "测试中…",
  connectionOk: "连接成功，用时 {ms} 毫秒",
  modelMissing: "（该模型不在服务商的列表中）",
  loadModels: "加载模型列表",
  modelsLoaded: "{n} 个模型",
  noConfigs: "还没有 API 配置。",
  default: "默认",
  deleteConfigConfirm: "删除 API 配置“{name}”？",
  newPersona: "新建角色",
  description: "描述",
  systemPrompt: "系统提示词",
  builtIn: "内置",
  deletePersonaConfirm: "删除角色“{name}”？",
  chatNotFound: "此对话不存在。",
  sessionExpired: "登录已过期，请重新登录。",
  networkError: "无法连接服务器。",
  settings: "设置",
  tokens: "输入 {prompt} · 输出 {completion}",
  skipToComposer: "跳到输入框",
  skipToContent: "跳到正文",
  today: "今天",
  yesterday: "昨天",
  previous7Days: "过去 7 天",
  older: "更早",
  answerComplete: "回答完成",
  keyNeededToTest: "测试尚未保存的设置时，请输入 API 密钥。",
  image: "图片",
  loadImageFrom: "从 {host} 加载图片",
  notifications: "通知",
  signedOutElsewhere: "你已在另一个标签页中退出登录。",
  unreachableTitle: "无法连接 Parley",
  unreachableBody: "服务器没有响应。你仍处于登录状态，Parley 会继续重试。",
  retryingIn: "{seconds} 秒后重试…",
  retrying: "正在重试…",
  retryNow: "立即重试",
  codeWait: "验证码刚刚发出，{seconds} 秒后可以再次获取。",
  codeResent: "新的验证码已发出（{minutes} 分钟内有效），之前的验证码不再可用。",
  codeFor: "验证码发送至",
  changeLogin: "更改",
  resendCode: "重新发送验证码",
  resendIn: "{seconds} 秒后可重新发送",
  couldNotUpdateChat: "无法修改对话",
  couldNotDeleteChat: "无法删除对话",
  couldNotSwitchModel: "无法切换模型",
  couldNotSignOut: "无法退出登录",
  retry: "重试",
  chatsLoadFailed: "无法加载对话列表",
  catalogLoadFailed: "无法加载角色和 API 配置",
  stopping: "正在停止…",
  saveAndRegenerate: "保存并重新生成",
  editHint: "Ctrl/⌘+Enter 保存，Esc 取消",
};

export type Locale = "en" | "zh-CN";
export const locales: { id: Locale; label: string }[] = [
  { id: "en", label: "English" },
  { id: "zh-CN", label: "简体中文" },
];

const dictionaries: Record<Locale, Record<MessageKey, string>> = { en, "zh-CN": zhCN };
const storageKey = "parley.locale";

export function detectLocale(stored: string | null, browser: readonly string[]): Locale {
  if (stored === "en" || stored === "zh-CN") return stored;
  for (const tag of browser) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

export function translate(locale: Locale, key: MessageKey, vars?: Record<string, string | number>): string {
  let text = dictionaries[locale][key] ?? en[key];
  if (vars) for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

type T = (key: MessageKey, vars?: Record<string, string | number>) => string;

const I18nContext = createContext<{ locale: Locale; setLocale: (l: Locale) => void; t: T }>({
  locale: "en",
  setLocale: () => {},
  t: (key, vars) => translate("en", key, vars),
});

function readStored(): string | null {
  try {
    return localStorage.getItem(storageKey);
  } catch {
    return null;
  }
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [locale, setLocaleState] = useState<Locale>(() => detectLocale(readStored(), navigator.languages ?? [navigator.language]));
  useEffect(() => {
    document.documentElement.lang = locale;
  }, [locale]);
  const setLocale = useCallback((next: Locale) => {
    setLocaleState(next);
    try {
      localStorage.setItem(storageKey, next);
    } catch {
      // Private mode: the choice lasts for this page only.
    }
  }, []);
  const value = useMemo(() => ({ locale, setLocale, t: ((key, vars) => translate(locale, key, vars)) as T }), [locale, setLocale]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useT(): T {
  return useContext(I18nContext).t;
}

export function useLocale() {
  return useContext(I18nContext);
}
