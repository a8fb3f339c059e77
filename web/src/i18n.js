// The picture's words in English, 中文 (Traditional) and 日本語: static labels carry data-i18n
// keys, code asks t(key, values). Dates are written by Intl in the chosen language.
const WORDS = {
  en: {
    connecting: "● connecting", live: "● live", reconnecting: "● reconnecting",
    shown: "{shown} of {loaded} observations shown · {tracks} tracks",
    outside: "{n} new outside the period", period: "Period", from: "From", to: "To",
    daysIn: "Days in", showPeriod: "Show period", replay: "Replay", window: "Window",
    wholePeriod: "whole period", hour1: "1 hour", hours6: "6 hours", hours24: "24 hours",
    play: "▶ play", pause: "❚❚ pause", origin: "Origin", kind: "Kind", air: "air", sea: "sea",
    area: "area", platformClass: "Platform class", layers: "Layers", adiz: "ADIZs",
    median: "median line", gates: "strait gates", grid: "grid", fused: "fused",
    legend: "Legend", detail: "Detail", events: "Events", sorties: "Sorties", ledger: "Ledger", messages: "Messages",
    audit: "Audit", tracksTab: "Tracks", pick: "Click a symbol, track or area on the map, or pick one from Tracks.",
    loading: "loading…", loadedPeriod: "{n} observations {start} – {end}",
    fusing: "fusing…", fusedCount: "{n} seen by several parties",
    fusedTooLong: "fused layer: choose a period of {days} days or fewer",
    fusedFailed: "fused layer unavailable: {reason}", own: "own", partner: "partner",
    fusedSources: "fused (several sources)", trackLine: "trail (arrows: direction)",
    position: "Position", course: "Course", speed: "Speed", altitude: "Altitude",
    updates: "Updates", lastUpdate: "Last update", platform: "Platform", count: "Count",
    nationality: "Nationality", observed: "Observed", until: "Until", marking: "Marking",
    sensor: "Sensor", provenance: "Provenance", verification: "Verification", remarks: "Remarks",
    transforms: "Released with transforms", cursor: "Cursor", tracksHint: "{n} tracks in view order; arrows move, Enter shows one.",
    cluster: "{n} tracks here: zoom in", language: "Language", hostileFighter: "hostile fighter",
    hostileDestroyer: "hostile destroyer", friendlyFighter: "friendly fighter",
    incidents: "incidents (search and rescue)", alertFrom: "Alert from {party}: {subject}",
    messageFrom: "{precedence} message from {party}: {subject}", showOnMap: "show on map",
    messageCounts: "{threads} threads · {unread} unread · {unacknowledged} awaiting acknowledgement · {escalated} escalated",
    attached: "attached", noMessages: "No messages yet.",
  },
  zh: {
    connecting: "● 連線中", live: "● 即時", reconnecting: "● 重新連線中",
    shown: "顯示 {shown} / {loaded} 筆觀測 · {tracks} 條航跡",
    outside: "{n} 筆新資料在期間外", period: "期間", from: "自", to: "至",
    daysIn: "日界", showPeriod: "顯示期間", replay: "回放", window: "時窗",
    wholePeriod: "整個期間", hour1: "1 小時", hours6: "6 小時", hours24: "24 小時",
    play: "▶ 播放", pause: "❚❚ 暫停", origin: "來源", kind: "類別", air: "空中", sea: "海上",
    area: "區域", platformClass: "平台類型", layers: "圖層", adiz: "防空識別區",
    median: "海峽中線", gates: "海峽通道", grid: "經緯網", fused: "融合",
    legend: "圖例", detail: "詳情", events: "事件", sorties: "架次", ledger: "對等帳", messages: "訊息",
    audit: "稽核", tracksTab: "航跡", pick: "點選地圖上的符號、航跡或區域，或從「航跡」中選取。",
    loading: "載入中…", loadedPeriod: "{start} – {end} 共 {n} 筆觀測",
    fusing: "融合中…", fusedCount: "{n} 項由多方共同觀測",
    fusedTooLong: "融合圖層：請選擇 {days} 天以內的期間",
    fusedFailed: "融合圖層無法使用：{reason}", own: "本方", partner: "夥伴",
    fusedSources: "融合（多來源）", trackLine: "航跡尾（箭頭：方向）",
    position: "位置", course: "航向", speed: "速度", altitude: "高度",
    updates: "更新次數", lastUpdate: "最後更新", platform: "平台", count: "數量",
    nationality: "國籍", observed: "觀測時間", until: "至", marking: "標記",
    sensor: "感測器", provenance: "來源紀錄", verification: "驗證", remarks: "備註",
    transforms: "釋出時經轉換", cursor: "游標", tracksHint: "共 {n} 條航跡；方向鍵移動，Enter 顯示。",
    cluster: "此處 {n} 條航跡：請放大", language: "語言", hostileFighter: "敵對戰鬥機",
    hostileDestroyer: "敵對驅逐艦", friendlyFighter: "友軍戰鬥機",
    incidents: "事件（搜索救援）", alertFrom: "{party} 警報：{subject}",
    messageFrom: "{party} 的{precedence}訊息：{subject}", showOnMap: "在地圖上顯示",
    messageCounts: "{threads} 個對話 · {unread} 則未讀 · {unacknowledged} 則待確認 · {escalated} 則已升級",
    attached: "附件", noMessages: "尚無訊息。",
  },
  ja: {
    connecting: "● 接続中", live: "● ライブ", reconnecting: "● 再接続中",
    shown: "{loaded} 件中 {shown} 件表示 · 航跡 {tracks}",
    outside: "期間外の新着 {n} 件", period: "期間", from: "開始", to: "終了",
    daysIn: "日付の基準", showPeriod: "期間を表示", replay: "再生", window: "時間幅",
    wholePeriod: "期間全体", hour1: "1 時間", hours6: "6 時間", hours24: "24 時間",
    play: "▶ 再生", pause: "❚❚ 一時停止", origin: "情報源", kind: "種別", air: "航空", sea: "海上",
    area: "区域", platformClass: "機種・艦種", layers: "レイヤー", adiz: "防空識別圏",
    median: "中間線", gates: "海峡", grid: "経緯線", fused: "融合",
    legend: "凡例", detail: "詳細", events: "イベント", sorties: "機数", ledger: "互恵台帳", messages: "メッセージ",
    audit: "監査", tracksTab: "航跡", pick: "地図上の記号・航跡・区域をクリックするか、「航跡」から選択してください。",
    loading: "読み込み中…", loadedPeriod: "{start} – {end} の観測 {n} 件",
    fusing: "融合中…", fusedCount: "複数の当事者が観測: {n}",
    fusedTooLong: "融合レイヤー: {days} 日以内の期間を選んでください",
    fusedFailed: "融合レイヤーを利用できません: {reason}", own: "自国", partner: "パートナー",
    fusedSources: "融合（複数情報源）", trackLine: "航跡（矢印: 進行方向）",
    position: "位置", course: "針路", speed: "速力", altitude: "高度",
    updates: "更新回数", lastUpdate: "最終更新", platform: "機種・艦種", count: "数",
    nationality: "国籍", observed: "観測時刻", until: "終了", marking: "区分",
    sensor: "センサー", provenance: "出所", verification: "検証", remarks: "備考",
    transforms: "提供時の変換", cursor: "カーソル", tracksHint: "航跡 {n} 件。矢印キーで移動、Enter で表示。",
    cluster: "この付近に航跡 {n} 件: 拡大してください", language: "言語", hostileFighter: "敵戦闘機",
    hostileDestroyer: "敵駆逐艦", friendlyFighter: "友軍戦闘機",
    incidents: "事案（捜索救難）", alertFrom: "{party} からの警報: {subject}",
    messageFrom: "{party} からの{precedence}メッセージ: {subject}", showOnMap: "地図に表示",
    messageCounts: "スレッド {threads} 件 · 未読 {unread} 件 · 確認待ち {unacknowledged} 件 · エスカレーション {escalated} 件",
    attached: "添付", noMessages: "メッセージはまだありません。",
  },
};

export const LANGUAGES = { en: "English", zh: "中文", ja: "日本語" };
const HTML_LANG = { en: "en", zh: "zh-Hant", ja: "ja" };
const LOCALE = { en: "en-GB", zh: "zh-TW", ja: "ja-JP" };
let current = "en";

export function chooseLanguage(wanted) {
  current = WORDS[wanted] ? wanted : "en";
  document.documentElement.lang = HTML_LANG[current];
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  return current;
}

export const language = () => current;
export const locale = () => LOCALE[current];

export function t(key, values = {}) {
  const text = WORDS[current][key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** A time as the chosen language writes it, in UTC + tzMinutes, with the zone named. */
export function formatTime(iso, tzMinutes) {
  if (!iso) return "—";
  const at = new Date(Date.parse(iso) + tzMinutes * 60_000);
  const text = new Intl.DateTimeFormat(LOCALE[current], {
    timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(at);
  if (!tzMinutes) return `${text} Z`;
  const sign = tzMinutes > 0 ? "+" : "-";
  const hours = String(Math.floor(Math.abs(tzMinutes) / 60)).padStart(2, "0");
  return `${text} UTC${sign}${hours}`;
}
